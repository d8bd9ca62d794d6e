// Part of biosig_ros (not of Vicon's SDK). In the DataStream SDK 1.11 C API,
// Client_SetBufferSize (ViconDataStreamSDK_C/CClient.cpp) calls DisableDebugData() instead of
// SetBufferSize(), so a C client always keeps the SDK's default buffer of one frame and a
// late reader skips frames. This entry point does what Client_SetBufferSize should.
#include "DataStreamClient.h"

extern "C" __attribute__((visibility("default")))
void BiosigRos_Client_SetBufferSize(void* client, unsigned int frames)
{
  static_cast<ViconDataStreamSDK::CPP::Client*>(client)->SetBufferSize(frames);
}
