// report.html: one self-contained page (no network, no script) in a run's folder showing every
// picture the run drew, with captions that name what is drawn (axes and units of the loss curves,
// the class of each colour in the latent scatter, the traversed dimensions with their KL or code
// variance), beside summary.json and the per-epoch metrics table. Pictures are referenced by
// their file names in the folder; a picture the run did not draw is left out.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace latent::app {

struct ReportInput {
  std::string title;                 // e.g. "vae on fashion-mnist"
  std::string summary_json;          // summary.json's text
  std::string metrics_csv;           // metrics.csv's text
  std::vector<std::string> classes;  // class names by label (empty: the labels' numbers)
  // The traversed dimensions, in the order of traversals.png's rows, with what ranked them.
  std::vector<std::pair<long long, double>> traversed;
  std::string traversal_score;  // "KL (nats)" or "code variance"
  std::string traversal_range;  // e.g. "-3 to 3 (the prior)"
  // More pictures after the loss curves: file name and caption (plain text).
  std::vector<std::pair<std::string, std::string>> extra_figures;
};

// Writes <folder>/report.html atomically; returns the file names of the pictures it references.
std::vector<std::string> write_report_html(const std::string& folder, const ReportInput& in);

// Fashion-MNIST's ten class names, by label.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace latent::app
