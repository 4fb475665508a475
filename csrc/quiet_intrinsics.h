// Force-included (binding.gyp: -include) before the AVX-512 and AMX kernel files. GCC 12's own
// avx512fintrin.h initialises `_mm512_undefined_*` results from themselves (`__m512 __Y = __Y;`),
// and every inlined use then warns -W(maybe-)uninitialized at that header line: ~145 warnings,
// ~2,800 lines, per build (GCC PR 105593, fixed in GCC 13's headers). Diagnostic pragmas follow
// the location a warning points at, so ignoring the class around the header's inclusion silences
// exactly those and keeps the warnings for our own code.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
