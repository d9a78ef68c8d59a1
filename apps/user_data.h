// The data the latent tool trains on and inspects: Fashion-MNIST by default, or the user's own.
//   --data DIR          a folder of IDX files in the MNIST layout ({train,t10k}-{images-idx3,
//                       labels-idx1}-ubyte[.gz]: MNIST, Fashion-MNIST, KMNIST), test split included
//   --data FILE.npy     [N, D] float32/float64 (values as they are) or uint8 (scaled by 1/255);
//                       [N, H, W] or [N, H, W, C] arrays are flattened and drawn as H x W (x C)
//   --data FILE.csv     numbers, one example per line (a header line is skipped)
//   --labels FILE       the examples' labels (.npy [N] or [N, 1], a one-column .csv, or IDX)
//   --test-data FILE    held-out examples in the same format (--test-labels for their labels);
//                       else --val-split FRACTION (default 0.1) of --data is held out, drawn with
//                       the seed
//   --image HxW[xC]     how an example is drawn (28x28 when D = 784; without a shape no image
//                       grids are drawn)
// Errors name the flag or the file: a file of another kind, rows of other widths, labels of
// another count, values that are not finite, a fraction outside (0, 1), a shape that does not
// multiply to D.
#pragma once

#include <cstdint>
#include <string>

#include "apps/picture.h"
#include "core/data.h"

namespace latent::app {

struct DataSpec {
  std::string data;  // "": Fashion-MNIST ($LATENT_FASHION_MNIST or Debian's folder)
  std::string labels;
  std::string test_data;
  std::string test_labels;
  double val_split = -1;  // -1: unset (0.1 for a file without --test-data)
  std::uint64_t seed = 0;
  std::int64_t limit = 0;       // first examples of the training rows (0: all)
  std::int64_t test_limit = 0;  // first examples of the held-out rows (0: all)
  std::string image;            // "HxW[xC]" or "" (inferred)
};

struct UserData {
  data::Dataset train, test;  // on the CPU; labels undefined when unknown
  ImageShape image;           // undefined: no pictures of examples
  std::string source;         // a description for messages and the summary
};

UserData load_user_data(const DataSpec& spec);

// The examples a saved model is inspected or evaluated on: a folder's (or Fashion-MNIST's) test
// split, or its training split when `train`; every row of a .npy or .csv file (with `labels`
// when given; `train` is then refused). The first `limit` (0: all). `image`: as --image, or the
// shape the data gives, or 28x28 for 784 values.
struct Examples {
  data::Dataset data;
  ImageShape image;
};
Examples load_examples(const std::string& data, const std::string& labels, bool train,
                       std::int64_t limit, const std::string& image);

// --image, else 28x28 for 784 values, else undefined; throws naming --image when it does not
// multiply to `width`.
ImageShape image_for(std::int64_t width, const std::string& image);

// Data a Bernoulli likelihood (or binarization) reads as probabilities must lie in [0, 1]:
// otherwise throws latent::Error naming the range found and suggesting a Gaussian likelihood.
void check_unit_range(const UserData& d, const std::string& why);

}  // namespace latent::app
