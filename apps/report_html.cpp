#include "apps/report_html.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/picture.h"
#include "core/data/file_util.h"

namespace latent::app {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

// A CSV text as an HTML table (the first line is the header).
std::string table_of(const std::string& csv) {
  std::istringstream in(csv);
  std::string line, html = "<table>\n";
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    html += "<tr>";
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) {
      if (!header && cell.size() > 10) {  // numbers shortened for reading; the CSV keeps them all
        char* end = nullptr;
        const double v = std::strtod(cell.c_str(), &end);
        if (end == cell.c_str() + cell.size()) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.6g", v);
          cell = buf;
        }
      }
      html += header ? "<th>" + escape(cell) + "</th>" : "<td>" + escape(cell) + "</td>";
    }
    html += "</tr>\n";
    header = false;
  }
  return html + "</table>\n";
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

std::vector<std::string> write_report_html(const std::string& folder, const ReportInput& in) {
  namespace fs = std::filesystem;
  std::vector<std::string> used;
  auto figure = [&](const std::string& file, const std::string& caption) {
    if (!fs::exists(fs::path(folder) / file)) return std::string();
    used.push_back(file);
    return "<figure><img src=\"" + escape(file) + "\" alt=\"" + escape(file) + "\"><figcaption>" +
           caption + "</figcaption></figure>\n";
  };
  std::string legend = "<ul class=\"legend\">";
  for (int k = 0; k < 10; ++k) {
    const std::string name =
        k < static_cast<int>(in.classes.size())
            ? std::to_string(k) + ": " + in.classes[static_cast<std::size_t>(k)]
            : "label " + std::to_string(k);
    legend +=
        "<li><span style=\"background:" + hex(palette(k)) + "\"></span>" + escape(name) + "</li>";
  }
  legend += "</ul>";
  std::string dims;
  for (std::size_t i = 0; i < in.traversed.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g", in.traversed[i].second);
    dims += "<li>row " + std::to_string(i + 1) + ": dimension " +
            std::to_string(in.traversed[i].first) + " (" + escape(in.traversal_score) + " " + buf +
            ")</li>";
  }

  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
      escape(in.title) +
      "</title>\n<style>\nbody{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}\n"
      "figure{display:inline-block;vertical-align:top;margin:0 2em 2em 0;max-width:660px}\n"
      "figcaption{font-size:90%;color:#444;margin-top:.4em}\nimg{image-rendering:pixelated;"
      "border:1px solid #ccc;max-width:100%}\ntable{border-collapse:collapse;font-size:85%}\n"
      "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}\npre{background:#f6f6f6;"
      "padding:1em;font-size:85%}\n.legend{list-style:none;padding:0;columns:2}\n.legend span{"
      "display:inline-block;width:12px;height:12px;margin-right:6px}\n</style></head><body>\n"
      "<h1>" +
      escape(in.title) + "</h1>\n";
  html += "<h2>Pictures</h2>\n";
  html += figure("loss.png",
                 "Loss curves: the total loss in nats per example (y) by epoch (x, from 1), "
                 "<span style=\"color:#1f77b4\">train</span> and <span "
                 "style=\"color:#d62728\">test</span>; the range is printed on the axis.");
  for (const auto& [file, caption] : in.extra_figures) html += figure(file, escape(caption));
  html +=
      figure("samples.png", "Samples: 64 draws from the prior, decoded (the likelihood's mean).");
  html += figure("reconstructions.png",
                 "Reconstructions: rows of 10 test examples, each row followed by their "
                 "reconstructions through the code.");
  html += figure("interpolations.png",
                 "Interpolations: each row decodes 10 points on the line between the codes of two "
                 "test examples (first and last: their reconstructions).");
  html += figure("traversals.png",
                 "Traversals: each row sweeps one latent dimension of the first test example's "
                 "code over " +
                     escape(in.traversal_range) + ", left to right, the others held:<ul>" + dims +
                     "</ul>");
  html += figure("latent_scatter.png",
                 "Latent scatter: the codes of up to 2000 test examples in their two most varying "
                 "dimensions, coloured by class:" +
                     legend);
  html += "<h2>Summary (summary.json)</h2>\n<pre>" + escape(in.summary_json) + "</pre>\n";
  html += "<h2>Metrics by epoch (metrics.csv)</h2>\n" + table_of(in.metrics_csv);
  html += "</body></html>\n";
  data::write_file_atomic((fs::path(folder) / "report.html").string(), html, "report");
  return used;
}

}  // namespace latent::app
