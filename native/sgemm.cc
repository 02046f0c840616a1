// CEG Lab optional native matmul (N-API, no dependencies): C = op(A)·op(B) in float32,
// operating directly on the wasm backend's heap (a Float32Array over wasm memory).
// Built by native/build.mjs (npm install's postinstall) with the machine's g++ and -march=native;
// the register-blocked kernel uses GCC vector extensions, so it compiles to AVX-512, AVX2 or SSE.
#include <node_api.h>
#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));  // unaligned access

static const int MR = 8;        // rows of C per micro tile
static const int NR = 2 * VW;   // columns of C per micro tile
static const int KC = 256;      // depth block: a KC x NR panel of B stays in L1
#ifndef CEG_MC
#define CEG_MC 128
#endif
static const int MC = CEG_MC;   // row block

// C[0..R, 0..NR) (+)= sum_k a(r, k) * B[k, 0..NR); a(r, k) = A[r*rsA + k*csA]; B row stride ldb.
template <int R>
static inline void micro(int kc, const float* A, long rsA, long csA, const float* B, long ldb, float* C, long ldc,
                         bool acc) {
  vf c0[R], c1[R];
  for (int r = 0; r < R; r++) {
    if (acc) {
      c0[r] = *(const vfu*)(C + r * ldc);
      c1[r] = *(const vfu*)(C + r * ldc + VW);
    } else {
      c0[r] = vf{} ;
      c1[r] = vf{};
    }
  }
  for (int k = 0; k < kc; k++) {
    const vf b0 = *(const vfu*)(B + k * ldb);
    const vf b1 = *(const vfu*)(B + k * ldb + VW);
    const float* a = A + k * csA;
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      const float s = a[r * rsA];
      c0[r] += s * b0;
      c1[r] += s * b1;
    }
  }
  for (int r = 0; r < R; r++) {
    *(vfu*)(C + r * ldc) = c0[r];
    *(vfu*)(C + r * ldc + VW) = c1[r];
  }
}

typedef void (*MicroFn)(int, const float*, long, long, const float*, long, float*, long, bool);
static const MicroFn MICROS[MR + 1] = {nullptr,   micro<1>, micro<2>, micro<3>, micro<4>,
                                       micro<5>, micro<6>, micro<7>, micro<8>};

static const int NC = 512;      // column block: a packed KC x NC block of B (512 kB) stays in L2
static std::vector<float> packed;

// C[M, N] = op(A)[M, K] · op(B)[K, N], C row-major (ldc = N); a(i, k) = A[i*rsA + k*csA];
// b(k, j) = B[k*N + j], or B[j*K + k] if transB. B is packed per (KC x NC) block into contiguous
// KC x NR panels (GotoBLAS order), which also absorbs the transpose and avoids cache-set conflicts.
static void sgemm(int M, int N, int K, const float* A, long rsA, long csA, const float* B, bool tB, float* C) {
  const int Nf = N - N % NR;
  packed.resize((size_t)KC * NC);
  for (int jc = 0; jc < Nf; jc += NC) {
    const int nc = std::min(NC, Nf - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      const bool acc = pc > 0;
      for (int jr = 0; jr < nc; jr += NR) {
        float* P = packed.data() + (long)jr * kc;
        if (!tB) {
          for (int k = 0; k < kc; k++) {
            const float* src = B + (long)(pc + k) * N + jc + jr;
            for (int j = 0; j < NR; j++) P[k * NR + j] = src[j];
          }
        } else {
          for (int j = 0; j < NR; j++) {
            const float* src = B + (long)(jc + jr + j) * K + pc;
            for (int k = 0; k < kc; k++) P[k * NR + j] = src[k];
          }
        }
      }
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = std::min(MC, M - ic);
        for (int jr = 0; jr < nc; jr += NR) {
          const float* P = packed.data() + (long)jr * kc;
          float* Cb = C + jc + jr;
          int i = ic;
          for (; i + MR <= ic + mc; i += MR) micro<MR>(kc, A + i * rsA + pc * csA, rsA, csA, P, NR, Cb + (long)i * N, N, acc);
          if (i < ic + mc) MICROS[ic + mc - i](kc, A + i * rsA + pc * csA, rsA, csA, P, NR, Cb + (long)i * N, N, acc);
        }
      }
    }
  }
  if (Nf < N) {  // remaining columns (N not a multiple of NR): plain loops
    for (int i = 0; i < M; i++) {
      float* c = C + (long)i * N;
      for (int j = Nf; j < N; j++) c[j] = 0.f;
      for (int k = 0; k < K; k++) {
        const float s = A[i * rsA + k * csA];
        for (int j = Nf; j < N; j++) c[j] += s * (tB ? B[(long)j * K + k] : B[(long)k * N + j]);
      }
    }
  }
}


// matmul(heap: Float32Array, aOff, bOff, cOff, batch, M, N, K, transA, transB, aBatchStride, bBatchStride)
// offsets and strides in floats; a batch stride of 0 broadcasts that operand.
static napi_value MatMul(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 12) {
    napi_throw_error(env, nullptr, "matmul: expected 12 arguments");
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value ab;
  size_t byteOffset;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &byteOffset) != napi_ok ||
      type != napi_float32_array) {
    napi_throw_type_error(env, nullptr, "matmul: first argument must be a Float32Array");
    return nullptr;
  }
  double v[11];
  for (int i = 0; i < 11; i++) {
    napi_value num;  // booleans (transA, transB) and numbers alike
    if (napi_coerce_to_number(env, argv[i + 1], &num) != napi_ok || napi_get_value_double(env, num, &v[i]) != napi_ok) {
      napi_throw_type_error(env, nullptr, "matmul: arguments 2-12 must be numbers or booleans");
      return nullptr;
    }
  }
  const long aOff = (long)v[0], bOff = (long)v[1], cOff = (long)v[2];
  const int batch = (int)v[3], M = (int)v[4], N = (int)v[5], K = (int)v[6];
  const bool tA = v[7] != 0, tB = v[8] != 0;
  const long sA = (long)v[9], sB = (long)v[10];
  const long need = std::max({aOff + (batch - 1) * sA + (long)M * K, bOff + (batch - 1) * sB + (long)K * N,
                              cOff + (long)batch * M * N});
  if (aOff < 0 || bOff < 0 || cOff < 0 || need > (long)length) {
    napi_throw_range_error(env, nullptr, "matmul: operands lie outside the heap");
    return nullptr;
  }
  float* heap = (float*)data;
  const long rsA = tA ? 1 : K, csA = tA ? M : 1;
  for (int b = 0; b < batch; b++)
    sgemm(M, N, K, heap + aOff + b * sA, rsA, csA, heap + bOff + b * sB, tB, heap + cOff + (long)b * M * N);
  return nullptr;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn, isa;
  napi_create_function(env, "matmul", NAPI_AUTO_LENGTH, MatMul, nullptr, &fn);
  napi_set_named_property(env, exports, "matmul", fn);
  const char* name = VW == 16 ? "avx512" : VW == 8 ? "avx2" : "sse";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &isa);
  napi_set_named_property(env, exports, "isa", isa);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
