// Checkpoints: safetensors round trips, the exact byte layout, every validation error (on files
// built by hand), atomic writes, and resuming training bit for bit.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::expect_mentions;

// A scratch folder per test, and the names of the files in it.
class CheckpointTest : public testing::ScratchDirTest {
 protected:
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
};

std::string read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(values), s.size());
  return s;
}

// A file with this header text (unpadded) and data; `declared` overrides the length field.
std::string safetensors(const std::string& header, const std::string& data,
                        std::int64_t declared = -1) {
  const auto n = declared >= 0 ? static_cast<std::uint64_t>(declared) : header.size();
  return le64(n) + header + data;
}

// Two parameters of different dtypes and ranks in a nested tree.
struct Leaf : nn::Module {
  explicit Leaf(DType dt) {
    w = register_parameter(
        "w", Tensor::from_data(std::vector<double>{1.5, -2.0, 3.25, 0.125, -7.0, 9.5}, {2, 3},
                               {.dtype = dt}));
  }
  Tensor w;
};

struct Net : nn::Module {
  explicit Net(DType dt) {
    bias = register_parameter(
        "bias", Tensor::from_data(std::vector<double>{0.5, -0.25}, {2}, {.dtype = dt}));
    leaf = register_module("leaf", std::make_shared<Leaf>(dt));
  }
  Tensor bias;
  std::shared_ptr<Leaf> leaf;
};

void scramble(nn::Module& m) {
  NoGradGuard g;
  for (auto& p : m.parameters()) p.fill_(42.0);
}

void expect_same_params(const nn::Module& a, const nn::Module& b) {
  const auto pa = a.named_parameters();
  const auto pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_EQ(pa[i].second.to_vector<double>(), pb[i].second.to_vector<double>()) << pa[i].first;
  }
}

// ---- round trips ----------------------------------------------------------------------------

TEST_F(CheckpointTest, RoundTripF32AndF64KeepValuesShapesNamesAndMetadata) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    const std::string p = path(std::string("net_") + dtype_name(dt) + ".safetensors");
    Net src(dt);
    const Metadata meta{{"note", "hello \"world\"\n"}, {"latent.model", "test"}, {"empty", ""}};
    save(src, p, meta);

    EXPECT_EQ(read_metadata(p), meta);
    const auto listed = list_tensors(p);
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[0].first, "bias");
    EXPECT_EQ(listed[0].second, Shape({2}));
    EXPECT_EQ(listed[1].first, "leaf.w");
    EXPECT_EQ(listed[1].second, Shape({2, 3}));

    Net dst(dt);
    scramble(dst);
    const Tensor handle = dst.leaf->w;  // loading writes in place: handles see the new values
    EXPECT_EQ(load(dst, p), meta);
    expect_same_params(src, dst);
    EXPECT_EQ(handle.to_vector<double>(), src.leaf->w.to_vector<double>());
    EXPECT_EQ(dst.leaf->w.dtype(), dt);
    EXPECT_TRUE(dst.leaf->w.requires_grad());
  }
}

TEST_F(CheckpointTest, LoadConvertsBetweenF32AndF64) {
  Net src(DType::f64);
  save(src, path("a.safetensors"));
  Net dst(DType::f32);
  scramble(dst);
  load(dst, path("a.safetensors"));
  EXPECT_EQ(dst.bias.dtype(), DType::f32);
  expect_same_params(src, dst);  // the values are exact in float32
}

TEST_F(CheckpointTest, ExactByteLayout) {
  struct Tiny : nn::Module {
    Tiny() {
      // Registered out of name order: the file is sorted by name.
      register_parameter(
          "w", Tensor::from_data(std::vector<float>{1.5f, -2.0f}, {2}, {.dtype = DType::f32}));
      register_parameter(
          "a", Tensor::from_data(std::vector<double>{0.25}, {1, 1}, {.dtype = DType::f64}));
    }
  } tiny;
  const std::string p = path("tiny.safetensors");
  save(tiny, p, {{"k", "v"}});

  std::string header = R"({"__metadata__":{"k":"v"},)"
                       R"("a":{"dtype":"F64","shape":[1,1],"data_offsets":[0,8]},)"
                       R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  while (header.size() % 8 != 0) header += ' ';
  const std::string want =
      le64(header.size()) + header + raw<double>({0.25}) + raw<float>({1.5f, -2.0f});
  const std::string got = read_bytes(p);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_EQ(got, want);
  EXPECT_EQ((8 + header.size()) % 8, 0u);
}

TEST_F(CheckpointTest, EmptyModuleAndScalarsRoundTrip) {
  nn::Module empty;
  save(empty, path("e.safetensors"));
  EXPECT_EQ(read_bytes(path("e.safetensors")), le64(8) + "{}      ");
  EXPECT_TRUE(load(empty, path("e.safetensors")).empty());

  struct Scalar : nn::Module {
    Scalar() { s = register_parameter("s", Tensor::scalar(3.5, {.dtype = DType::f64})); }
    Tensor s;
  } a, b;
  save(a, path("s.safetensors"));
  scramble(b);
  load(b, path("s.safetensors"));
  EXPECT_EQ(b.s.item(), 3.5);
}

// ---- validation -----------------------------------------------------------------------------

// One parameter "x" of shape (2) float32.
struct One : nn::Module {
  One() { x = register_parameter("x", Tensor::zeros({2})); }
  Tensor x;
};

// A compressed file whose header claims a 2 GiB tensor it does not hold is refused without the
// memory of the claim: its buffer grows with the data that arrives.
TEST_F(CheckpointTest, CompressedFilesClaimingMoreThanTheyHoldCostNothing) {
  const std::string header =
      R"({"x":{"dtype":"F32","shape":[536870912],"data_offsets":[0,2147483648]}})";
  const std::string bytes = le64(header.size()) + header + raw<float>({1.0f, 2.0f});
  const std::string p = path("claim.safetensors.gz");
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  One m;
  expect_mentions(error_of([&] { load(m, p); }),
                  {"[load]", p.c_str(), "truncated: the tensors need 2147483648 bytes"});
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 100 * 1024);  // kilobytes
}

TEST_F(CheckpointTest, BrokenFilesAreRejectedWithTheFileAndTheProblem) {
  const std::string ok_data = raw<float>({1.0f, 2.0f});
  const std::string ok_entry = R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    const char* name;
    std::string bytes;
    const char* mentions;
  };
  const std::vector<Case> cases = {
      {"short", "abc", "fewer than the 8-byte header length"},
      {"long_header", safetensors("{" + ok_entry + "}", ok_data, 1000),
       "header length 1000 is larger than the file"},
      {"bad_json", safetensors("{\"x\": [1, 2", ""), "header is not valid JSON"},
      {"not_object", safetensors("[1, 2]", ""), "header is not a JSON object"},
      {"meta_not_string", safetensors(R"({"__metadata__":{"a":1}})", ""),
       "metadata value of 'a' is not a string"},
      {"no_dtype", safetensors(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", ok_data),
       "tensor 'x' has no \"dtype\""},
      {"dtype", safetensors(R"({"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", ok_data),
       "tensor 'x' has dtype 'I64'; only F32 and F64 are supported"},
      {"neg_dim",
       safetensors(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", ok_data),
       "shape entry that is not a valid size"},
      {"five_dims",
       safetensors(R"({"x":{"dtype":"F32","shape":[1,1,1,1,2],"data_offsets":[0,8]}})", ok_data),
       "has 5 dimensions"},
      {"byte_count",
       safetensors(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", ok_data),
       "has shape (3) of F32, 12 bytes, but data_offsets [0, 8] hold 8 bytes"},
      {"backwards",
       safetensors(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", ok_data),
       "run backwards"},
      {"out_of_range",
       safetensors(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                   R"("y":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                   ok_data),
       "truncated: the tensors need 16 bytes of data, the file holds 8"},
      {"overlap",
       safetensors(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                   ok_data + ok_data),
       "tensor 'y' at [4, 12] overlaps tensor 'x' at [0, 8]"},
      {"gap",
       safetensors(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", ok_data + ok_data),
       "gap of 4 bytes in the data before tensor 'x'"},
      {"truncated_data", safetensors("{" + ok_entry + "}", ok_data.substr(0, 5)),
       "truncated: the tensors need 8 bytes of data, the file holds 5"},
      {"trailing", safetensors("{" + ok_entry + "}", ok_data + "xyz"),
       "3 unexpected bytes after the last tensor"},
      {"duplicate_tensor", safetensors("{" + ok_entry + "," + ok_entry + "}", ok_data),
       "header names 'x' twice"},
      {"duplicate_metadata",
       safetensors(R"({"__metadata__":{"k":"a","k":"b"},)" + ok_entry + "}", ok_data),
       "header names 'k' twice"},
      {"overflowing_shape",
       safetensors(R"({"x":{"dtype":"F32","shape":[2251799813685248,2251799813685248,0],)"
                   R"("data_offsets":[0,0]}})",
                   ""),
       "more elements than a 64-bit count holds"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = path(std::string(c.name) + ".safetensors");
    write_bytes(p, c.bytes);
    One m;
    const std::string msg = error_of([&] { load(m, p); });
    expect_mentions(msg, {"[load]", p.c_str(), c.mentions});
    EXPECT_EQ(m.x.to_vector<float>(), (std::vector<float>{0.0f, 0.0f}));
    // The header readers validate the same way (the data checks need the file's size only).
    expect_mentions(error_of([&] { read_metadata(p); }), {"[load]", p.c_str(), c.mentions});
  }
  // The same hand-built file, unbroken, loads.
  write_bytes(path("good.safetensors"), safetensors("{" + ok_entry + "}", ok_data));
  One m;
  load(m, path("good.safetensors"));
  EXPECT_EQ(m.x.to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));
}

TEST_F(CheckpointTest, MissingFileIsAClearError) {
  const std::string p = path("nope.safetensors");
  One m;
  expect_mentions(error_of([&] { load(m, p); }), {"[load]", p.c_str()});
  expect_mentions(error_of([&] { list_tensors(p); }), {"[load]", p.c_str()});
  expect_mentions(error_of([&] { load(m, dir_); }), {"[load]"});  // a folder
}

TEST_F(CheckpointTest, ModuleMismatchesAreNamedAndChangeNothing) {
  const std::string p = path("vae.safetensors");
  struct Enc : nn::Module {
    Enc(std::int64_t out, bool extra) {
      auto layers = register_module("encoder", std::make_shared<nn::Module>())
                        ->register_module("layers", std::make_shared<nn::Module>());
      auto l0 = layers->register_module("0", std::make_shared<nn::Module>());
      w = l0->register_parameter("weight", Tensor::full({out, 784}, 1.0));
      b = l0->register_parameter("bias", Tensor::full({out}, 1.0));
      if (extra) l0->register_parameter("scale", Tensor::full({1}, 1.0));
    }
    Tensor w, b;
  };
  Enc big(512, false);
  {
    NoGradGuard g;
    big.w.fill_(3.0);
    big.b.fill_(3.0);
  }
  save(big, p);

  Enc small(256, false);
  expect_mentions(error_of([&] { load(small, p); }),
                  {"[load] ", p.c_str(),
                   ": encoder.layers.0.weight has shape (512, 784) in the file but (256, 784) in "
                   "the model"});
  // Validation runs before any copy: the bias, whose shape did fit, is untouched.
  EXPECT_EQ(small.b.to_vector<float>()[0], 1.0f);

  Enc more(512, true);
  expect_mentions(error_of([&] { load(more, p); }),
                  {p.c_str(), "parameters missing from the file: encoder.layers.0.scale"});
  EXPECT_EQ(more.w.to_vector<float>()[0], 1.0f);

  save(more, p);
  Enc fewer(512, false);
  expect_mentions(
      error_of([&] { load(fewer, p); }),
      {p.c_str(), "tensor 'encoder.layers.0.scale' in the file is not a parameter of the model"});
  EXPECT_EQ(fewer.w.to_vector<float>()[0], 1.0f);
}

// ---- atomic writes --------------------------------------------------------------------------

TEST_F(CheckpointTest, FailedSaveLeavesNoFileAndKeepsTheOldCheckpoint) {
  Net net(DType::f64);
  // A folder that does not exist.
  const std::string missing = path("no_such_folder/net.safetensors");
  expect_mentions(error_of([&] { save(net, missing); }), {"[save]", "no_such_folder"});
  EXPECT_FALSE(fs::exists(missing));

  // A write that fails half way: the file size limit stops it after the header.
  const std::string good = path("net.safetensors");
  save(net, good);
  const std::string before = read_bytes(good);
  Net other(DType::f64);
  scramble(other);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
  rlimit small = old;
  small.rlim_cur = 150;  // the file needs 192 bytes
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string msg = error_of([&] { save(other, good); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  expect_mentions(msg, {"[save]"});
  EXPECT_EQ(read_bytes(good), before);
  EXPECT_EQ(files(), std::vector<std::string>{"net.safetensors"});  // no temporary file left

  // A clash with the reserved training-state keys is refused before anything is written.
  optim::Adam opt(net.parameters());
  Generator gen(1);
  expect_mentions(error_of([&] {
                    save_training_state(good, net, opt, gen, 3, {{"latent.step", "9"}});
                  }),
                  {"[save]", "reserved key \"latent.step\""});
  EXPECT_EQ(read_bytes(good), before);
  Net back(DType::f64);
  scramble(back);
  load(back, good);
  expect_same_params(net, back);
}

// ---- training state -------------------------------------------------------------------------

// One training step whose data and noise come from gen: a regression of y = sum(x) from noisy x.
double train_step(nn::MLP& net, optim::Optimizer& opt, Generator& gen) {
  const Tensor x = Tensor::randn({16, 6}, gen);
  const Tensor noise = Tensor::randn({16, 6}, gen, {}, 0.0, 0.1);
  const Tensor y = sum(x, 1, true);
  const Tensor loss = mse(net(add(x, noise)), y);
  opt.zero_grad();
  loss.backward();
  opt.step();
  return loss.item();
}

std::unique_ptr<nn::MLP> make_net(std::uint64_t seed) {
  Generator init(seed);
  return std::make_unique<nn::MLP>(nn::MLPConfig{.sizes = {6, 8, 1}, .activation = Act::tanh},
                                   init);
}

TEST_F(CheckpointTest, ResumedTrainingRepeatsTheNextStepsBitForBit) {
  const std::string p = path("state.safetensors");
  auto net = make_net(3);
  optim::Adam opt(net->parameters(), {.lr = 0.01});
  Generator gen(11);
  for (int i = 0; i < 3; ++i) train_step(*net, opt, gen);
  opt.set_lr(0.005);  // as a schedule would; the checkpoint carries it
  save_training_state(p, *net, opt, gen, 3, {{"note", "run 1"}});

  std::vector<double> want;
  for (int i = 0; i < 2; ++i) want.push_back(train_step(*net, opt, gen));

  // Fresh objects with other initial weights, lr and seed: everything comes from the file.
  auto net2 = make_net(99);
  optim::Adam opt2(net2->parameters(), {.lr = 0.01});
  Generator gen2(5);
  const Metadata meta = load_training_state(p, *net2, opt2, gen2);
  EXPECT_EQ(training_step(meta), 3);
  EXPECT_EQ(meta.at("note"), "run 1");
  EXPECT_EQ(meta.at("latent.optim.name"), "adam");
  EXPECT_EQ(opt2.lr(), 0.005);
  EXPECT_EQ(opt2.step_count(), 3);
  std::vector<double> got;
  for (int i = 0; i < 2; ++i) got.push_back(train_step(*net2, opt2, gen2));
  EXPECT_EQ(got, want);
  expect_same_params(*net, *net2);
  EXPECT_EQ(gen2.offset(), gen.offset());

  // The file is a plain checkpoint too: model.* and optim.* tensors.
  bool has_moment = false;
  for (const auto& [name, shape] : list_tensors(p)) {
    EXPECT_TRUE(name.rfind("model.", 0) == 0 || name.rfind("optim.", 0) == 0) << name;
    has_moment = has_moment || name.rfind("optim.adam.v.", 0) == 0;
  }
  EXPECT_TRUE(has_moment);
}

TEST_F(CheckpointTest, TrainingStateErrorsChangeNothing) {
  const std::string p = path("state.safetensors");
  auto net = make_net(3);
  optim::Adam opt(net->parameters(), {.lr = 0.01});
  Generator gen(11);
  train_step(*net, opt, gen);
  save_training_state(p, *net, opt, gen, 1);

  // Another optimizer kind.
  auto net2 = make_net(4);
  const auto before = net2->parameters()[0].to_vector<double>();
  optim::SGD sgd(net2->parameters(), {.lr = 0.1});
  Generator gen2(5);
  expect_mentions(error_of([&] { load_training_state(p, *net2, sgd, gen2); }),
                  {"[load]", p.c_str(), "adam"});
  EXPECT_EQ(net2->parameters()[0].to_vector<double>(), before);
  EXPECT_EQ(gen2.offset(), 0u);

  // A model of another size.
  Generator init(1);
  nn::MLP wide({.sizes = {6, 9, 1}}, init);
  optim::Adam opt3(wide.parameters());
  expect_mentions(error_of([&] { load_training_state(p, wide, opt3, gen2); }),
                  {"[load]", "has shape (8, 6) in the file but (9, 6) in the model"});
  EXPECT_EQ(opt3.step_count(), 0);

  // A plain checkpoint has no training state.
  save(*net, path("plain.safetensors"));
  auto net4 = make_net(4);
  optim::Adam opt4(net4->parameters());
  expect_mentions(
      error_of([&] { load_training_state(path("plain.safetensors"), *net4, opt4, gen2); }),
      {"[load]", "parameters missing from the file: model."});
  expect_mentions(error_of([&] {
                    training_step({{"latent.step", "-1"}});
                  }),
                  {"[load]", "latent.step", "'-1'"});
}

}  // namespace
}  // namespace latent
