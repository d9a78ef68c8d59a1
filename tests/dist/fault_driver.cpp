// A training run in which one rank fails inside a step (its step callback throws at step 5),
// while the other ranks go on to the next step's all-reduce: the failing rank must end the whole
// job at once (tests/dist/run_fault.cmake runs it under mpirun and times it).
// With the argument `mismatch`: the ranks all-reduce tensors of other lengths (as ranks that built
// other models would), and MPI's failure must come back as latent's error, ending the job.
// With `escape`: the exception leaves the Session's scope on rank 1 and is caught outside it; the
// job must still end, non-zero, with the message the handler printed.
// With `return`: rank 1 catches it inside the Session and returns normally (the mistake abort()
// exists for); its Session's end says it waits, and ends the job after LATENT_DIST_END_TIMEOUT.
// With `stall`: rank 1 stops (sleeps) at step 5 instead, while rank 0 waits in the all-reduce:
// rank 0's watchdog ends the job after LATENT_DIST_TIMEOUT, once the program's last act
// (dist::on_watchdog) has run. With `stall-hang`: the last act never ends; the job ends all the
// same, 60 seconds later.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/latent.h"
#include "models/trainer.h"
#include "models/vae.h"

namespace {

// Trains with rank 1's step callback throwing at step 5 (stopping there, with `stall`).
void train_until_rank_1_fails(bool stall = false) {
  using namespace latent;
  Generator gen(1);
  const Tensor train = Tensor::rand({1024, 64}, gen);
  models::VAE vae({.input = 64, .hidden = {32}, .latent = 4, .seed = 1});
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  models::Trainer trainer(vae, opt, {.epochs = 50, .batch = 64});
  trainer.on_step([stall](const models::StepInfo& s) {
    if (dist::world().rank() != 1 || s.step != 5) return;
    if (stall) std::this_thread::sleep_for(std::chrono::minutes(10));
    throw Error("driver", "a step failed on purpose on rank 1");
  });
  trainer.fit(train);
}

// Runs `body`, catching its error: reported (caught `where` the session) and the program returns 0,
// as a program that handles an error itself would.
template <class Body>
int report_and_return(const char* where, Body body) {
  try {
    body();
  } catch (const latent::Error& e) {
    std::fprintf(stderr, "caught %s the session: %s\n", where, e.what());
    return 0;
  }
  std::printf("finished without the failure\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace latent;
  if (argc > 1 && std::strcmp(argv[1], "escape") == 0) {
    // The exception leaves the Session's scope: caught outside, reported, and the program returns
    // 0, while rank 0 waits in the next step's all-reduce.
    return report_and_return("outside", [&] {
      dist::Session session(&argc, &argv);
      train_until_rank_1_fails();
    });
  }
  if (argc > 1 && std::strcmp(argv[1], "return") == 0) {
    dist::Session session(&argc, &argv);
    return report_and_return("inside", [] { train_until_rank_1_fails(); });
  }
  dist::Session session(&argc, &argv);
  try {
    if (argc > 1 && std::strcmp(argv[1], "stall") == 0) {
      dist::on_watchdog([](const std::string& why) {
        std::fprintf(stderr, "the program's last act: %s\n", why.c_str());
      });
      train_until_rank_1_fails(/*stall=*/true);
    }
    if (argc > 1 && std::strcmp(argv[1], "stall-hang") == 0) {
      dist::on_watchdog([](const std::string&) {  // a last act that never ends
        std::fprintf(stderr, "the program's last act begins\n");
        std::this_thread::sleep_for(std::chrono::hours(1));
      });
      train_until_rank_1_fails(/*stall=*/true);
    }
    if (argc > 1 && std::strcmp(argv[1], "mismatch") == 0) {
      const Tensor t = Tensor::full({8 * (dist::world().rank() + 1)}, 1.0);
      dist::world().all_reduce(t);
      dist::world().all_reduce(t);
      std::printf("finished without the failure\n");
      return 0;
    }
    train_until_rank_1_fails();
  } catch (const Error& e) {
    dist::abort(1, e.what());
  }
  std::printf("finished without the failure\n");
  return 0;
}
