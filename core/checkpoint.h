// Checkpoints in the safetensors format, readable by Python's `safetensors` and by PyTorch
// (safetensors.torch.load_file).
//
// File layout (all integers little-endian):
//   8 bytes     N, the header's length in bytes (uint64)
//   N bytes     a JSON object, padded with spaces so that N is a multiple of 8:
//               {"__metadata__": {"key": "value", ...},
//                "<name>": {"dtype": "F32", "shape": [512, 784], "data_offsets": [begin, end]},
//                ...}
//   the data    every tensor's elements, row-major, at [begin, end) of this byte buffer (offsets
//               count from the first byte after the header). Tensors are laid out in name order,
//               back to back; the buffer ends with the last one.
// Metadata values are strings (numbers are written as decimal text).
//
// Writes are atomic (data::AtomicWriter: a temporary file in the same folder, fsync, rename), so a
// failed save leaves no file behind and never damages a checkpoint already at `path`.
//
// Reading validates the whole file before anything is used and throws latent::Error
// "[load] <path>: what is wrong" for: a missing or unreadable file, a file shorter than its
// header or its data, a header length beyond the file's size, a header that is not a JSON object,
// metadata that is not an object of strings, a tensor entry without dtype/shape/data_offsets, a
// dtype other than F32 and F64, more than four dimensions or a negative one, offsets that run
// backwards, leave the buffer, overlap, leave a gap, or do not hold shape's number of bytes, and
// bytes after the last tensor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/nn/module.h"
#include "core/optim/optimizer.h"
#include "core/random.h"
#include "core/shape.h"

namespace latent {

// The string-to-string "__metadata__" object of a checkpoint.
using Metadata = std::map<std::string, std::string>;

// Writes every parameter of `module` (named by named_parameters(): "encoder.layers.0.weight") as
// an F32 or F64 tensor (copied to the host first when on a GPU), with `metadata`. Throws
// latent::Error("[save] <path>: ...") when the folder does not exist or the write fails; the
// target is then untouched.
void save(const nn::Module& module, const std::string& path, const Metadata& metadata = {});

// Reads a checkpoint written by save() (or any safetensors file with the same tensor names) into
// the module's parameters, in place: each keeps its device and dtype (F32 <-> F64 is converted),
// handles held elsewhere (an optimizer) see the new values. Not recorded by autograd. Returns the
// file's metadata.
// Besides the file errors above, throws "[load] <path>: ..." for a parameter the file lacks, a
// tensor of the file the module does not have, or a shape mismatch ("encoder.layers.0.weight has
// shape (512, 784) in the file but (256, 784) in the model"). The module is unchanged whenever it
// throws: everything is checked before the first copy.
Metadata load(nn::Module& module, const std::string& path);

// The metadata of a checkpoint, and its tensors' names and shapes in file order (by name); both
// read the header only, validating it as above.
Metadata read_metadata(const std::string& path);
std::vector<std::pair<std::string, Shape>> list_tensors(const std::string& path);

// ---- training state -------------------------------------------------------------------------
// Everything needed to continue training exactly where it stopped: the parameters as
// "model.<name>", the optimizer's state (optim::Optimizer::state(): moments and step counts) as
// "optim.<name>", and in the metadata
//   "latent.step"         the training step, decimal
//   "latent.rng.seed"     the generator's seed and offset, decimal
//   "latent.rng.offset"
//   "latent.optim.name"   "sgd", "adam" or "adamw"
//   "latent.optim.lr"     the learning rate at the time of saving (a schedule may have moved it),
//                         written with 17 significant digits so it reads back exactly
// plus `extra` (e.g. the model's config). Keys of `extra` may not clash with these; that throws
// "[save] ...". Hyper-parameters other than lr come from the optimizer the caller builds.
void save_training_state(const std::string& path, const nn::Module& module,
                         const optim::Optimizer& optimizer, const Generator& generator,
                         std::int64_t step, const Metadata& extra = {});

// Restores what save_training_state() wrote into existing objects (module and optimizer built
// with the same structure) and returns the whole metadata (training_step() reads the step).
// Throws "[load] <path>: ..." for everything load() rejects (on the "model." tensors), for missing
// or malformed latent.* metadata, for an optimizer of another kind, and for optimizer state that
// does not fit the optimizer's parameters; nothing is changed then.
Metadata load_training_state(const std::string& path, nn::Module& module,
                             optim::Optimizer& optimizer, Generator& generator);

// What load_training_state() restores besides the parameters, from a state's metadata and its
// optimizer entries (names without "optim.") read elsewhere, e.g. by another rank: the optimizer's
// state and learning rate, and the generator. Throws as load_training_state() does, naming `path`
// (the optimizer is left unchanged then).
void apply_training_state(const std::string& path, const Metadata& metadata,
                          const optim::NamedTensors& state, optim::Optimizer& optimizer,
                          Generator& generator);

// The "latent.step" of a training-state checkpoint's metadata. Throws latent::Error
// "[load] ..." when it is missing or not a non-negative integer.
std::int64_t training_step(const Metadata& metadata);

}  // namespace latent
