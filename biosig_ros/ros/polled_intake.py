"""Subscriptions read in batches by a thread, for a node that needs its data a few dozen times
a second rather than at every message.

With rclpy, each message handed to a callback costs a wake-up of the executor, which rebuilds
its wait set in Python: about 0.3-0.5 ms on the development machine, most of a 100 Hz
stream's cost (measured: a live view taking 300 messages/s spent 15 % of a core on it). Here
the subscriptions belong to a companion node that no executor spins; a thread takes whatever
queued on each of them `rate` times a second and hands the messages, in order, to their
callbacks. Messages wait at most one period; the subscription's queue depth must cover one
period at the stream's rate (a longer stall loses the oldest, which a consumer sees as an
index gap). With rate 0 there is no thread: the owner calls `poll_guarded()` from a loop it
already has (each wake-up of a thread costs far more than its work on a loaded machine: an
empty poll takes 4 us back to back, 130 us after 20 ms of sleep, measured here).
"""
from __future__ import annotations

import threading
from typing import Callable

import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.subscription import Subscription

# No QoS event handlers: nothing waits on this node's entities, and best-effort volatile
# subscriptions accept every publisher.
_NO_EVENTS = SubscriptionEventCallbacks(use_default_callbacks=False)


class PolledIntake:
    """Owner's subscriptions (names resolved by the owner), polled from a thread."""

    def __init__(self, owner: Node, rate: float, on_error: Callable[[str, Exception], None]):
        self.node = rclpy.create_node(
            owner.get_name() + "_intake", namespace=owner.get_namespace(),
            context=owner.context, use_global_arguments=False, start_parameter_services=False)
        self._owner = owner
        self._period = 1.0 / rate if rate > 0 else 0.0
        self._on_error = on_error
        self._lock = threading.Lock()
        self._subscriptions: list[tuple[Subscription, Callable, bool]] = []
        self._stop = threading.Event()
        self._thread = None
        if rate > 0:
            self._thread = threading.Thread(target=self._run, name="polled-intake", daemon=True)
            self._thread.start()

    def subscribe(self, msg_type, topic: str, callback: Callable, qos,
                  raw: bool = False, with_info: bool = False) -> Subscription:
        """Subscribe to `topic` as the owner would name it (relative names, remappings);
        raw: the callback gets the serialized bytes; with_info: it also gets the message info
        (a dict: publisher_gid, timestamps)."""
        resolved = self._owner.resolve_topic_name(topic)
        subscription = self.node.create_subscription(msg_type, resolved, lambda _: None, qos,
                                                     event_callbacks=_NO_EVENTS, raw=raw)
        with self._lock:
            self._subscriptions.append((subscription, callback, with_info))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s[0] is not subscription]
            self.node.destroy_subscription(subscription)

    def poll(self) -> int:
        """Hand every queued message to its callback; returns how many there were."""
        count = 0
        with self._lock:
            for subscription, callback, with_info in self._subscriptions:
                while True:
                    with subscription.handle:
                        taken = subscription.handle.take_message(subscription.msg_type,
                                                                    subscription.raw)
                    if taken is None:
                        break
                    count += 1
                    try:
                        callback(*taken) if with_info else callback(taken[0])
                    except Exception as error:  # noqa: BLE001 - one bad message, not the node
                        self._on_error(subscription.topic_name, error)
        return count

    def poll_guarded(self) -> None:
        """poll(); an error other than a closed intake or a shut-down context goes to
        on_error."""
        if self._stop.is_set():
            return
        try:
            self.poll()
        except Exception as error:  # noqa: BLE001 - e.g. the context shut down under us
            if not self._stop.is_set() and self.node.context.ok():
                self._on_error("intake", error)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.poll_guarded()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:  # a poll in progress on the owner's thread ends first
            self.node.destroy_node()
