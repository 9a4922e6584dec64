// qlora/report/svg_plot.hpp — small, dependency-free SVG charts for reports.
//
// Results people would rather look at than read (per-layer error heatmaps,
// later loss curves, U-curves and score distributions) are written as SVG
// next to their CSV/Markdown tables: SVG opens in any browser, diffs as text
// and needs no plotting stack. Host only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/core/text_file.hpp"

namespace qlora::report {

/// A grid of values with row and column labels; NaN cells are drawn empty.
struct Heatmap {
  std::string title;
  std::vector<std::string> row_labels, col_labels;
  std::vector<std::vector<double>> values;  // [row][col]
};

namespace detail {

inline std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

/// Perceptually ordered ramp (light yellow -> dark purple) for t in [0, 1].
inline std::string ramp_color(double t) {
  static constexpr double kStops[][3] = {{255, 255, 204}, {161, 218, 180}, {65, 182, 196},
                                         {44, 127, 184},  {37, 52, 148},   {49, 0, 90}};
  t = std::clamp(t, 0.0, 1.0) * 5.0;
  const int i = std::min(4, int(t));
  const double f = t - i;
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", int(kStops[i][0] + f * (kStops[i + 1][0] - kStops[i][0])),
                int(kStops[i][1] + f * (kStops[i + 1][1] - kStops[i][1])),
                int(kStops[i][2] + f * (kStops[i + 1][2] - kStops[i][2])));
  return buf;
}

inline std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace detail

/// Side-by-side heatmaps sharing one colour scale (so panels compare), with
/// a legend. `log_scale` maps colours by log10, for errors spanning decades.
inline std::string render_heatmaps(const std::vector<Heatmap>& panels, const std::string& value_label,
                                   bool log_scale = true) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& p : panels)
    for (const auto& r : p.values)
      for (double v : r)
        if (std::isfinite(v) && (!log_scale || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  auto t_of = [&](double v) {
    if (log_scale) return hi > lo ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : 0.5;
    return hi > lo ? (v - lo) / (hi - lo) : 0.5;
  };
  constexpr int kCell = 14, kLabelW = 60, kTop = 40, kColLabelH = 90, kGap = 30;
  int width = 10, height = 0;
  std::vector<int> x0;
  for (const auto& p : panels) {
    x0.push_back(width + kLabelW);
    width += kLabelW + int(p.col_labels.size()) * kCell + kGap;
    height = std::max(height, kTop + kColLabelH + int(p.row_labels.size()) * kCell);
  }
  const int legend_y = height + 20;
  height = legend_y + 50;
  width = std::max(width, 420);
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (std::size_t k = 0; k < panels.size(); ++k) {
    const Heatmap& p = panels[k];
    const int gx = x0[k], gy = kTop + kColLabelH;
    s << "<text x=\"" << gx << "\" y=\"18\" font-size=\"13\" font-weight=\"bold\">" << detail::xml_escape(p.title)
      << "</text>\n";
    for (std::size_t c = 0; c < p.col_labels.size(); ++c)
      s << "<text transform=\"translate(" << gx + int(c) * kCell + kCell / 2 + 3 << "," << gy - 4
        << ") rotate(-60)\">" << detail::xml_escape(p.col_labels[c]) << "</text>\n";
    for (std::size_t r = 0; r < p.row_labels.size(); ++r) {
      s << "<text x=\"" << gx - 4 << "\" y=\"" << gy + int(r) * kCell + kCell - 3 << "\" text-anchor=\"end\">"
        << detail::xml_escape(p.row_labels[r]) << "</text>\n";
      for (std::size_t c = 0; c < p.col_labels.size() && c < p.values[r].size(); ++c) {
        const double v = p.values[r][c];
        if (!std::isfinite(v)) continue;
        s << "<rect x=\"" << gx + int(c) * kCell << "\" y=\"" << gy + int(r) * kCell << "\" width=\"" << kCell
          << "\" height=\"" << kCell << "\" fill=\"" << detail::ramp_color(t_of(std::max(v, lo))) << "\"><title>"
          << detail::xml_escape(p.row_labels[r] + " " + p.col_labels[c] + ": " + detail::fmt(v)) << "</title></rect>\n";
      }
    }
  }
  // Legend: a ramp from lo to hi.
  for (int i = 0; i < 100; ++i)
    s << "<rect x=\"" << 20 + 3 * i << "\" y=\"" << legend_y << "\" width=\"3\" height=\"12\" fill=\""
      << detail::ramp_color(i / 99.0) << "\"/>\n";
  s << "<text x=\"20\" y=\"" << legend_y + 26 << "\">" << detail::fmt(lo) << "</text>\n<text x=\"320\" y=\""
    << legend_y + 26 << "\" text-anchor=\"end\">" << detail::fmt(hi) << "</text>\n<text x=\"170\" y=\""
    << legend_y + 40 << "\" text-anchor=\"middle\">" << detail::xml_escape(value_label)
    << (log_scale ? " (log scale)" : "") << "</text>\n</svg>\n";
  return s.str();
}

using qlora::write_text_file;  // reports are written atomically (core/text_file.hpp)


}  // namespace qlora::report
