#include "apps/picture.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/data/file_util.h"
#include "core/error.h"

namespace latent::app {
namespace {

// 3x5 glyphs, one row per entry, bit 2 = left column.
struct Glyph {
  char c;
  std::uint8_t rows[5];
};
constexpr Glyph kFont[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 1, 1}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'A', {2, 5, 7, 5, 5}}, {'B', {6, 5, 6, 5, 6}},
    {'C', {7, 4, 4, 4, 7}}, {'D', {6, 5, 5, 5, 6}}, {'E', {7, 4, 6, 4, 7}}, {'F', {7, 4, 6, 4, 4}},
    {'G', {7, 4, 5, 5, 7}}, {'H', {5, 5, 7, 5, 5}}, {'I', {7, 2, 2, 2, 7}}, {'J', {1, 1, 1, 5, 7}},
    {'K', {5, 5, 6, 5, 5}}, {'L', {4, 4, 4, 4, 7}}, {'M', {5, 7, 7, 5, 5}}, {'N', {6, 5, 5, 5, 5}},
    {'O', {7, 5, 5, 5, 7}}, {'P', {7, 5, 7, 4, 4}}, {'Q', {7, 5, 5, 7, 1}}, {'R', {7, 5, 6, 5, 5}},
    {'S', {7, 4, 7, 1, 7}}, {'T', {7, 2, 2, 2, 2}}, {'U', {5, 5, 5, 5, 7}}, {'V', {5, 5, 5, 5, 2}},
    {'W', {5, 5, 7, 7, 5}}, {'X', {5, 5, 2, 5, 5}}, {'Y', {5, 5, 2, 2, 2}}, {'Z', {7, 1, 2, 4, 7}},
    {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}}, {'+', {0, 2, 7, 2, 0}}, {':', {0, 2, 0, 2, 0}},
    {'/', {1, 1, 2, 4, 4}}, {'_', {0, 0, 0, 0, 7}}, {'=', {0, 7, 0, 7, 0}}, {'(', {2, 4, 4, 4, 2}},
    {')', {2, 1, 1, 1, 2}},
};

const Glyph* glyph(char c) {
  c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Glyph& g : kFont)
    if (g.c == c) return &g;
  return nullptr;
}

constexpr Rgb kPalette[10] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                              {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                              {188, 189, 34},  {23, 190, 207}};

}  // namespace

Rgb palette(int k) {
  return kPalette[((k % 10) + 10) % 10];
}

namespace {

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
  check(width > 0 && height > 0 && width <= 16384 && height <= 16384, "picture", "bad canvas size ",
        width, "x", height);
  rgb_.resize(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  rgb_[i] = c.r;
  rgb_[i + 1] = c.g;
  rgb_[i + 2] = c.b;
}

Rgb Canvas::get(int x, int y) const {
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = std::max(y0, 0); y < std::min(y1, height_); ++y)
    for (int x = std::max(x0, 0); x < std::min(x1, width_); ++x) set(x, y, c);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c) {
  const double steps = std::max({std::fabs(x1 - x0), std::fabs(y1 - y0), 1.0});
  for (int i = 0; i <= static_cast<int>(steps); ++i) {
    const double t = i / steps;
    const int x = static_cast<int>(std::lround(x0 + t * (x1 - x0)));
    const int y = static_cast<int>(std::lround(y0 + t * (y1 - y0)));
    set(x, y, c);
    set(x, y + 1, c);  // two pixels thick: readable at a glance
  }
}

void Canvas::text(int x, int y, const std::string& s, Rgb c, int scale) {
  for (char ch : s) {
    if (const Glyph* g = glyph(ch))
      for (int r = 0; r < 5; ++r)
        for (int b = 0; b < 3; ++b)
          if (g->rows[r] & (4 >> b))
            fill_rect(x + b * scale, y + r * scale, x + (b + 1) * scale, y + (r + 1) * scale, c);
    x += 4 * scale;
  }
}

void Canvas::save_png(const std::string& path) const {
  // Encoded in memory (stb's callback API, so nothing is written before the encoder succeeded),
  // then written atomically: every write checked, a unique temporary file, the old file kept on
  // any failure.
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, width_, height_, 3, rgb_.data(), width_ * 3))
    throw Error("picture", path + ": the PNG encoder failed");
  data::write_file_atomic(path, png, "picture");
}

ImageShape parse_image_shape(const std::string& text, const std::string& flag) {
  ImageShape s;
  int fields[3] = {0, 0, 1};
  int n = 0;
  std::size_t pos = 0;
  while (n < 3 && pos <= text.size()) {
    const std::size_t x = std::min(text.find('x', pos), text.size());
    const std::string item = text.substr(pos, x - pos);
    int v = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    check(!item.empty() && ec == std::errc() && p == item.data() + item.size() && v > 0, "image",
          flag, " '", text, "' is not HxW or HxWxC (positive integers, e.g. 28x28 or 32x32x3)");
    fields[n++] = v;
    pos = x + 1;
    if (x == text.size()) break;
  }
  check(n >= 2 && pos > text.size(), "image", flag, " '", text,
        "' is not HxW or HxWxC (e.g. 28x28 or 32x32x3)");
  check(fields[2] == 1 || fields[2] == 3, "image", flag, " '", text,
        "': C must be 1 (grey) or 3 (RGB)");
  check(fields[0] <= 4096 && fields[1] <= 4096, "image", flag, " '", text,
        "': at most 4096 x 4096 pixels");
  s.h = fields[0];
  s.w = fields[1];
  s.c = fields[2];
  return s;
}

Canvas image_grid(const std::vector<float>& pixels, std::int64_t count, ImageShape shape, int cols,
                  int zoom) {
  check(count > 0 && shape.defined() && cols > 0 && zoom > 0, "picture", "bad grid: ", count,
        " images of ", shape.h, "x", shape.w, " in ", cols, " columns");
  check(static_cast<std::int64_t>(pixels.size()) >= count * shape.size(), "picture", "grid needs ",
        count * shape.size(), " values, got ", pixels.size());
  const int rows = static_cast<int>((count + cols - 1) / cols);
  const int cw = shape.w * zoom + 2, ch = shape.h * zoom + 2;
  Canvas c(cols * cw + 2, rows * ch + 2, {40, 40, 40});
  auto level = [](float v) {
    return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
  };
  for (std::int64_t i = 0; i < count; ++i) {
    const int gx = static_cast<int>(i % cols) * cw + 2, gy = static_cast<int>(i / cols) * ch + 2;
    const float* img = pixels.data() + i * shape.size();
    for (int y = 0; y < shape.h; ++y)
      for (int x = 0; x < shape.w; ++x) {
        const float* px = img + (static_cast<std::int64_t>(y) * shape.w + x) * shape.c;
        const Rgb colour = shape.c == 3 ? Rgb{level(px[0]), level(px[1]), level(px[2])}
                                        : Rgb{level(px[0]), level(px[0]), level(px[0])};
        c.fill_rect(gx + x * zoom, gy + y * zoom, gx + (x + 1) * zoom, gy + (y + 1) * zoom, colour);
      }
  }
  return c;
}

Canvas scatter(const std::vector<float>& xy, const std::vector<float>& labels, int size,
               const std::vector<std::string>& names) {
  check(xy.size() % 2 == 0 && xy.size() / 2 == labels.size(), "picture",
        "scatter needs one label per point: ", xy.size() / 2, " points, ", labels.size(),
        " labels");
  Canvas c(size, size);
  float lo[2] = {std::numeric_limits<float>::max(), std::numeric_limits<float>::max()};
  float hi[2] = {-lo[0], -lo[1]};
  for (std::size_t i = 0; i < xy.size(); ++i) {
    lo[i % 2] = std::min(lo[i % 2], xy[i]);
    hi[i % 2] = std::max(hi[i % 2], xy[i]);
  }
  const int margin = 20;
  const double span = size - 2.0 * margin;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double u = (xy[2 * i] - lo[0]) / std::max(hi[0] - lo[0], 1e-12f);
    const double v = (xy[2 * i + 1] - lo[1]) / std::max(hi[1] - lo[1], 1e-12f);
    const int x = margin + static_cast<int>(u * span),
              y = size - margin - static_cast<int>(v * span);
    const Rgb col = kPalette[static_cast<int>(labels[i]) % 10];
    c.fill_rect(x - 1, y - 1, x + 2, y + 2, col);
  }
  // Legend: label k (its name when given) in its colour.
  int widest = 1;
  for (int k = 0; k < 10; ++k)
    widest = std::max(widest, static_cast<int>(k < static_cast<int>(names.size())
                                                   ? names[static_cast<std::size_t>(k)].size()
                                                   : std::to_string(k).size()));
  const int lx = size - 24 - 8 * widest;
  for (int k = 0; k < 10; ++k) {
    c.fill_rect(lx, 6 + 16 * k, lx + 10, 16 + 16 * k, kPalette[k]);
    c.text(
        lx + 16, 6 + 16 * k,
        k < static_cast<int>(names.size()) ? names[static_cast<std::size_t>(k)] : std::to_string(k),
        {0, 0, 0}, 2);
  }
  return c;
}

Canvas line_plot(const std::vector<Series>& series, int width, int height,
                 const std::string& y_title) {
  Canvas c(width, height);
  double lo = std::numeric_limits<double>::max(), hi = -lo;
  std::size_t longest = 0;
  for (const Series& s : series) {
    longest = std::max(longest, s.y.size());
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  const int left = 90, right = 20, top = 34, bottom = 30;
  const Rgb axis{0, 0, 0}, grid{225, 225, 225};
  if (longest == 0 || lo > hi) return c;
  if (hi - lo < 1e-12) hi = lo + 1.0;
  const double w = width - left - right, h = height - top - bottom;
  auto px = [&](double i) { return left + (longest > 1 ? i / double(longest - 1) : 0.5) * w; };
  auto py = [&](double v) { return top + (hi - v) / (hi - lo) * h; };
  for (int k = 0; k <= 4; ++k) {
    const double v = lo + (hi - lo) * k / 4.0;
    c.line(left, py(v), width - right, py(v), grid);
    c.text(4, static_cast<int>(py(v)) - 5, short_number(v), axis, 2);
  }
  c.line(left, top, left, top + h, axis);
  c.line(left, top + h, width - right, top + h, axis);
  c.text(left, height - 16, "1", axis, 2);
  c.text(left + static_cast<int>(w) / 2 - 20, height - 16, "EPOCH", axis, 2);
  c.text(width - right - 30, height - 16, std::to_string(longest), axis, 2);
  if (!y_title.empty()) c.text(4, 6, y_title, axis, 2);
  int legend_y = top + 4;
  for (const Series& s : series) {
    for (std::size_t i = 1; i < s.y.size(); ++i)
      if (std::isfinite(s.y[i - 1]) && std::isfinite(s.y[i]))
        c.line(px(i - 1.0), py(s.y[i - 1]), px(double(i)), py(s.y[i]), s.colour);
    if (s.y.size() == 1)
      c.fill_rect(int(px(0)) - 2, int(py(s.y[0])) - 2, int(px(0)) + 3, int(py(s.y[0])) + 3,
                  s.colour);
    c.fill_rect(width - right - 120, legend_y, width - right - 108, legend_y + 10, s.colour);
    c.text(width - right - 100, legend_y, s.name, axis, 2);
    legend_y += 16;
  }
  return c;
}

}  // namespace latent::app
