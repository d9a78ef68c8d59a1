#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> shape_cases() {
  std::vector<OpCase> v;
  using In = std::vector<InputSpec>;
  using Args = const std::vector<Tensor>&;

  v.push_back({.name = "narrow_cols/middle",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 7}}};
                   },
               .fn = [](Args x) { return narrow_cols(x[0], 2, 3); }});
  v.push_back({.name = "narrow_cols/first",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 7}}};
                   },
               .fn = [](Args x) { return narrow_cols(x[0], 0, 1); }});
  v.push_back({.name = "narrow_cols/last",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 7}}};
                   },
               .fn = [](Args x) { return narrow_cols(x[0], 4, 3); }});
  // The (mu | logvar) split of a VAE encoder and its inverse.
  v.push_back({.name = "narrow_cols/halves",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 8}}};
                   },
               .fn = [](Args x) { return mul(narrow_cols(x[0], 0, 4), narrow_cols(x[0], 4, 4)); }});

  v.push_back({.name = "concat_cols/two",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 3}}, {.shape = {n, 4}}};
                   },
               .fn =
                   [](Args x) {
                     return concat_cols({x[0], x[1]});
                   }});
  // (mu | logvar) of a VAE with Z = 32 at batch 4096.
  v.back().bench_inputs = [] { return In{{.shape = {4096, 32}}, {.shape = {4096, 32}}}; };
  v.push_back({.name = "concat_cols/three",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 2}}, {.shape = {n, 5}}, {.shape = {n, 1}}};
                   },
               .fn =
                   [](Args x) {
                     return concat_cols({x[0], x[1], x[2]});
                   }});
  // Only some inputs need a gradient; the same tensor twice accumulates both halves.
  v.push_back({.name = "concat_cols/partial_and_repeated",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 3}}, {.shape = {n, 2}, .grad = false}};
                   },
               .fn =
                   [](Args x) {
                     return concat_cols({x[0], x[1], x[0]});
                   }});

  v.push_back({.name = "concat_rows/two",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 4}}, {.shape = {2, 4}}};
                   },
               .fn =
                   [](Args x) {
                     return concat_rows({x[0], x[1]});
                   }});
  v.push_back(
      {.name = "concat_rows/three_3d",
       .inputs =
           [](std::int64_t n) {
             return In{{.shape = {n, 2, 3}}, {.shape = {1, 2, 3}}, {.shape = {n + 1, 2, 3}}};
           },
       .fn =
           [](Args x) {
             return concat_rows({x[0], x[1], x[2]});
           }});
  v.push_back({.name = "concat_rows/partial_1d",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n}, .grad = false}, {.shape = {3}}};
                   },
               .fn =
                   [](Args x) {
                     return concat_rows({x[0], x[1]});
                   }});

  v.push_back({.name = "tile_rows/three",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 4}}};
                   },
               .fn = [](Args x) { return tile_rows(x[0], 3); }});
  // R = 3 samples of a VAE's 4096 x 784 targets.
  v.back().bench_inputs = [] { return In{{.shape = {4096, 784}}}; };
  v.push_back({.name = "tile_rows/once_3d",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 2, 2}}};
                   },
               .fn = [](Args x) { return tile_rows(x[0], 1); }});
  v.push_back({.name = "tile_rows/vector",
               .inputs = [](std::int64_t n) { return In{{.shape = {n}}}; },
               .fn = [](Args x) { return tile_rows(x[0], 5); }});

  v.push_back({.name = "transpose/rect",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 5}}};
                   },
               .fn = [](Args x) { return transpose(x[0]); }});
  v.back().bench_inputs = [] { return In{{.shape = {4096, 784}}}; };
  // Larger than one 32x32 tile in both directions, with partial edge tiles.
  v.push_back({.name = "transpose/tiles",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n + 33, 37}}};
                   },
               .fn = [](Args x) { return transpose(x[0]); },
               .grad_n = 1});
  return v;
}

}  // namespace latent::testing
