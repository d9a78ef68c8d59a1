// JsonReport: the text parses as JSON, with escaped strings and non-finite numbers as null.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "models/report.h"

namespace latent::models {
namespace {

TEST(JsonReport, EscapesStringsAndNullsNonFiniteNumbers) {
  JsonReport r;
  r.set("checkpoint", std::string("dir/q\"uote\\back.safetensors"));
  r.set("test_elbo", std::numeric_limits<double>::quiet_NaN());
  r.set("test_kl", 1.5);
  r.set("images", std::int64_t{200});
  r.set("inf", std::numeric_limits<double>::infinity());
  const std::string text = r.dump();
  EXPECT_NE(text.find(R"("checkpoint": "dir/q\"uote\\back.safetensors")"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("test_elbo": null)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("test_kl": 1.5)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("images": 200)"), std::string::npos) << text;
  EXPECT_NE(text.find("\"non_finite\": [\n    \"test_elbo\",\n    \"inf\"\n  ]"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("nan"), std::string::npos) << text;
  // Fields keep the order they were set in.
  EXPECT_LT(text.find("checkpoint"), text.find("test_elbo"));
  EXPECT_EQ(r.non_finite().size(), 2u);
}

}  // namespace
}  // namespace latent::models
