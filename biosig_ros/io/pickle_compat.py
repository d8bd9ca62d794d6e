"""Pickle the way biosiglive peers can read, and unpickle only what is expected.

- dumps_portable: pickles numpy arrays under the name numpy.core.multiarray (what NumPy 1.x
  writes and NumPy 2.x still reads) instead of NumPy 2's numpy._core, so that biosiglive
  clients and analysis scripts on either NumPy major version can load what we write.
- loads_plain / PlainDataUnpickler: for bytes from the network; refuses every global, so
  only dict, list, tuple, str, bytes, int, float, bool and None come back.
- loads_numpy / NumpyDataUnpickler: for .bio files; additionally allows the few globals that
  rebuild numpy arrays, dtypes and scalars. Anything else (os.system, builtins.eval, ...) is
  refused with pickle.UnpicklingError before it runs.
"""
from __future__ import annotations

import io
import pickle
import types

# Globals a numpy array, dtype or scalar pickle may name, under NumPy 1.x and 2.x spellings.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol 2 pickles of arrays carry their bytes through it
}


class PlainDataUnpickler(pickle.Unpickler):
    """Refuses every global: only plain Python data can be built."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")


class NumpyDataUnpickler(pickle.Unpickler):
    """Allows plain data plus numpy arrays, dtypes and scalars; refuses anything else."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            if module.startswith("numpy.core"):
                module = module.replace("numpy.core", _numpy_core_module(), 1)
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")


def _numpy_core_module() -> str:
    import numpy

    return "numpy._core" if int(numpy.__version__.split(".")[0]) >= 2 else "numpy.core"


def loads_plain(data: bytes):
    return PlainDataUnpickler(io.BytesIO(data)).load()


def loads_numpy(data: bytes):
    return NumpyDataUnpickler(io.BytesIO(data)).load()


class _PortablePickler(pickle._Pickler):  # the Python pickler: its dispatch can be extended
    """Writes numpy._core.* globals as numpy.core.* (NumPy 1.x names, NumPy 2.x reads both)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_global_portable(self, obj, name=None):
        module = getattr(obj, "__module__", None) or ""
        if module.startswith("numpy._core"):
            qualname = name or obj.__qualname__
            self.write_global_name(module.replace("numpy._core", "numpy.core", 1), qualname)
            self.memoize(obj)
            return
        pickle._Pickler.save_global(self, obj, name)

    def write_global_name(self, module: str, name: str) -> None:
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("utf-8"))

    dispatch[types.BuiltinFunctionType] = _save_global_portable
    dispatch[types.FunctionType] = _save_global_portable


# Fast path: the C pickler, after a prefix that defines the portable globals in the memo.
# The prefix pushes numpy.core.multiarray._reconstruct and .scalar (names every NumPy reads,
# without a deprecation warning), memoizes them as entries 0 and 1 and pops them; the C
# pickler, given a memo holding the real functions at those indices, then refers to them
# with BINGET instead of writing NumPy 2's numpy._core names. 20x faster than _PortablePickler
# (a 170 kB reply: about 20 us instead of 400 us).
_MEMO_GLOBALS = (("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"))


def _short_unicode(text: str) -> bytes:
    data = text.encode("ascii")
    return pickle.SHORT_BINUNICODE + bytes([len(data)]) + data


_MEMO_PREFIX = b"".join(
    _short_unicode(module) + _short_unicode(name)
    + pickle.STACK_GLOBAL + pickle.MEMOIZE + pickle.POP for module, name in _MEMO_GLOBALS)
_memo_objects: list | None = None


def _real_memo_objects() -> list:
    global _memo_objects
    if _memo_objects is None:
        import importlib

        core = _numpy_core_module()
        _memo_objects = [
            getattr(importlib.import_module(module.replace("numpy.core", core, 1)), name)
            for module, name in _MEMO_GLOBALS]
    return _memo_objects


def _dumps_memo_prefixed(obj, protocol: int) -> bytes:
    buffer = io.BytesIO()
    buffer.write(pickle.PROTO + bytes([protocol]) + _MEMO_PREFIX)
    pickler = pickle.Pickler(buffer, protocol=protocol)
    pickler.memo = {id(o): (index, o) for index, o in enumerate(_real_memo_objects())}
    pickler.dump(obj)
    return buffer.getvalue()


def dumps_portable(obj, protocol: int = 4) -> bytes:
    """pickle.dumps(obj, protocol), loadable by NumPy 1.x and 2.x peers."""
    if protocol >= 4:
        data = _dumps_memo_prefixed(obj, protocol)
        # Anything else naming numpy._core (protocol 5's _frombuffer, other numpy types) goes
        # through the slow renaming pickler; a false match inside binary data only costs time.
        if b"numpy._core" not in data:
            return data
    buffer = io.BytesIO()
    _PortablePickler(buffer, protocol=protocol).dump(obj)
    return buffer.getvalue()
