// The subcommands that look into a saved model (apps/latent_inspect.cpp): each rebuilds the model
// from its checkpoint alone (models::load) and reads examples as apps/user_data.h's
// load_examples does (a folder's test split by default, or every row of a --data file).
//   encode       the codes (a VAE's posterior means) of the images as codes.npy [N, Z], and
//                labels.npy [N] beside them when the data has labels
//   reconstruct  the first n images and their reconstructions (the likelihood's mean through the
//                code) as reconstructions.png and reconstructions.npy [n, D]
//   interpolate  decoded codes along the line between two images' codes: interpolation.png and
//                .npy [steps, D]
//   traverse     one image's code with a latent dimension swept: traversals.png and .npy
//                [dims * steps, D], and traversals.json naming the dimensions (for a VAE those
//                with the most KL, swept over -3..3; for the others those whose codes vary most,
//                swept over the range the data's codes take)
// Pictures need an image shape (--image, the data's own, or 28 x 28 for D = 784); without one only
// the .npy files are written. Every file is
// written atomically; errors name the checkpoint, the flag or the file.
#pragma once

#include <cstdint>
#include <string>

namespace latent::app {

struct InspectArgs {
  std::string checkpoint;
  std::string data;        // a folder of IDX files or a .npy/.csv file ("": Fashion-MNIST)
  std::string labels;      // labels of a --data file
  std::string image;       // "HxW[xC]" or "" (apps/user_data.h)
  bool train = false;      // a folder's training split instead of its test split
  std::int64_t limit = 0;  // images read (0: all)
  std::string out = "out/inspect";
  std::string device = "auto";
  // reconstruct
  std::int64_t n = 30;
  // interpolate
  std::int64_t from = 0, to = 1, steps = 10;
  // traverse
  std::int64_t index = 0, dims = 8, traverse_steps = 11;
};

int run_encode(const InspectArgs& a);
int run_reconstruct(const InspectArgs& a);
int run_interpolate(const InspectArgs& a);
int run_traverse(const InspectArgs& a);

}  // namespace latent::app
