// Freestanding stand-ins for the few library names the shared kernel headers use, for the wasm32
// build (kernel_wasm.cc, compiled with -nostdlib -ffreestanding and no sysroot, so neither libc nor
// libstdc++ headers exist). Only clang's own freestanding headers are included; kernel_wasm.cc
// defines memcpy/memset/memmove (lowered to the bulk-memory instructions).
#pragma once
#include <stddef.h>
#include <stdint.h>

extern "C" {
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
}

namespace std {
using ::size_t;
using ::memcpy;
using ::memmove;
using ::memset;
}  // namespace std
