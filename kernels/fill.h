// Fill family: constant fills and random fills from the shared Philox stream.
//   y[n]: y[i] = value
//   y[n]: y[i] = x[i]                   (copy: same device, no overlap)
//   y[n]: y[i] = lo + (hi - lo) * uniform_at(seed, offset, i)
//   y[draws * n]: draws consecutive normal draws of n numbers each, draw d starting at block
//   offset + d * blocks_for(n): y[d * n + i] = mean + stddev * normal_at(seed, offset + d *
//   blocks_for(n), i). One launch gives exactly what `draws` separate fills of n numbers would
//   (each from where the previous one left the generator); draws = 1 is a plain fill.
// The i-th number depends only on (seed, offset, i), so both backends write identical streams.
#pragma once

#include <cstdint>

#include "kernels/common.h"

namespace latent::kernels {
namespace cpu {
template <class T>
void fill(T* y, T value, index_t n, Stream stream = nullptr);
template <class T>
void copy(T* y, const T* x, index_t n, Stream stream = nullptr);
template <class T>
void fill_uniform(T* y, std::uint64_t seed, std::uint64_t offset, T lo, T hi, index_t n,
                  Stream stream = nullptr);
template <class T>
void fill_normal(T* y, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, index_t n,
                 index_t draws, Stream stream = nullptr);
// y[i] = static_cast<To>(x[i])
template <class To, class From>
void cast(To* y, const From* x, index_t n);
}  // namespace cpu

namespace cuda {
void fill(float* y, float value, index_t n, Stream stream);
void copy(float* y, const float* x, index_t n, Stream stream);
void fill_uniform(float* y, std::uint64_t seed, std::uint64_t offset, float lo, float hi, index_t n,
                  Stream stream);
void fill_normal(float* y, std::uint64_t seed, std::uint64_t offset, float mean, float stddev,
                 index_t n, index_t draws, Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
