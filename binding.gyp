{
  # node-gyp build of the native flash-attention addon. Each kernel TU is its own static library
  # so it gets only its own -m flags; flash_attention.cc (baseline ISA) picks one at runtime.
  "variables": {
    "sdpa_cflags": ["-std=c++17", "-O3", "-fno-math-errno", "-fPIC", "-Wno-unused-function"]
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["<@(sdpa_cflags)"],
    # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: when a worker is terminated while JavaScript is inside
    # one of our functions, N-API calls fail and node-addon-api would rethrow out of its callback
    # wrapper (std::terminate: the whole process aborts); with it, the error is dropped quietly as
    # the environment goes away (issue 20).
    "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
  },
  "targets": [
    {
      "target_name": "sdpa_kernel_avx2",
      "type": "static_library",
      "sources": ["csrc/kernel_avx2.cc", "csrc/kernel_decode_avx2.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "sdpa_kernel_avx512",
      "type": "static_library",
      "sources": ["csrc/kernel_avx512.cc", "csrc/kernel_decode_avx512.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
                    "-include", "<(module_root_dir)/csrc/quiet_intrinsics.h"]
    },
    {
      "target_name": "sdpa_kernel_avx512bf16",
      "type": "static_library",
      "sources": ["csrc/kernel_avx512bf16.cc", "csrc/kernel_decode_avx512bf16.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
                    "-mavx512bf16", "-include", "<(module_root_dir)/csrc/quiet_intrinsics.h"]
    },
    {
      "target_name": "sdpa_kernel_amx",
      "type": "static_library",
      "sources": ["csrc/kernel_amx.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
                    "-mavx512bf16", "-mamx-tile", "-mamx-bf16", "-include", "<(module_root_dir)/csrc/quiet_intrinsics.h"]
    },
    {
      "target_name": "sdpa_native",
      "sources": ["csrc/binding.cc", "csrc/flash_attention.cc", "csrc/kernel_scalar.cc", "csrc/kernel_decode_scalar.cc"],
      "dependencies": ["sdpa_kernel_avx2", "sdpa_kernel_avx512", "sdpa_kernel_avx512bf16", "sdpa_kernel_amx"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "ldflags": ["-pthread"]
    }
  ]
}
