#pragma once
// The CUDA driver API, loaded with dlopen so that the tests build and run where there is
// no driver: has_gpu() is how [cuda] tests decide to skip. Only what the tests call.
#include <dlfcn.h>

#include <cstddef>

namespace tidemark::profiler::test {

struct CudaDriver {
  using CUresult = int;  // 0 = CUDA_SUCCESS
  using CUdevice = int;
  using CUcontext = void*;
  using CUmodule = void*;
  using CUfunction = void*;
  using CUstream = void*;
  using CUdeviceptr = unsigned long long;

  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr*, std::size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, std::size_t) = nullptr;
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void*, std::size_t) = nullptr;
  CUresult (*cuModuleLoadData)(CUmodule*, const void*) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, CUstream, void**, void**) = nullptr;

  // The driver, or nullptr when libcuda is missing or has no usable device.
  static const CudaDriver* get() {
    static const CudaDriver* driver = load();
    return driver;
  }
  static bool has_gpu() { return get() != nullptr; }

 private:
  template <class F>
  static bool bind(void* lib, F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(lib, name));
    return f != nullptr;
  }
  static const CudaDriver* load() {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return nullptr;
    static CudaDriver d;
    // The _v2 names are what cuda.h maps these calls to.
    const bool ok = bind(lib, d.cuInit, "cuInit") &&
                    bind(lib, d.cuDeviceGetCount, "cuDeviceGetCount") &&
                    bind(lib, d.cuDeviceGet, "cuDeviceGet") &&
                    bind(lib, d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain") &&
                    bind(lib, d.cuCtxSetCurrent, "cuCtxSetCurrent") &&
                    bind(lib, d.cuCtxSynchronize, "cuCtxSynchronize") &&
                    bind(lib, d.cuMemAlloc, "cuMemAlloc_v2") &&
                    bind(lib, d.cuMemFree, "cuMemFree_v2") &&
                    bind(lib, d.cuMemsetD8, "cuMemsetD8_v2") &&
                    bind(lib, d.cuMemcpyHtoD, "cuMemcpyHtoD_v2") &&
                    bind(lib, d.cuModuleLoadData, "cuModuleLoadData") &&
                    bind(lib, d.cuModuleGetFunction, "cuModuleGetFunction") &&
                    bind(lib, d.cuLaunchKernel, "cuLaunchKernel");
    int count = 0;
    if (!ok || d.cuInit(0) != 0 || d.cuDeviceGetCount(&count) != 0 || count == 0) return nullptr;
    return &d;
  }
};

}  // namespace tidemark::profiler::test
