// qlora/report/svg_plot.hpp — small, dependency-free SVG charts for reports.
//
// Results people would rather look at than read (per-layer error heatmaps,
// later loss curves, U-curves and score distributions) are written as SVG
// next to their CSV/Markdown tables: SVG opens in any browser, diffs as text
// and needs no plotting stack. Host only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
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

/// A number for a report table in printf format `f` ("%.2f"); "—" where there
/// is none (NaN or infinite), so a missing value never reads as "nan".
inline std::string table_number(const char* f, double v) {
  if (!std::isfinite(v)) return "—";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}


// ---------------------------------------------------------------- bar and line charts
// Used by data/quality_report.hpp for the paper's Figures 2–4 (relation mix,
// answer length, category coverage per subset). Same look as the heatmap:
// white background, sans-serif 10 px, bold 13 px title, <title> tooltips.

/// Bars: values[series][group]. Grouped side by side, or stacked per group.
/// `errors` (same shape, optional) draws ±error whiskers on grouped bars.
struct BarChart {
  std::string title, y_label;
  std::vector<std::string> groups;        // x-axis categories
  std::vector<std::string> series;        // legend entries
  std::vector<std::vector<double>> values;
  std::vector<std::vector<double>> errors;
  bool stacked = false;
};

/// Lines over shared x labels: values[series][x], optional ±spread[series][x]
/// drawn as whiskers (mean ± standard deviation, for example).
struct LineChart {
  std::string title, y_label;
  std::vector<std::string> x_labels;
  std::vector<std::string> series;
  std::vector<std::vector<double>> values;
  std::vector<std::vector<double>> spread;
};

namespace detail {

/// Ten distinguishable colours (Tableau 10) for series; cycles beyond ten.
inline const char* series_color(std::size_t i) {
  static constexpr const char* kColors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                            "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return kColors[i % 10];
}

/// A "nice" axis maximum and tick step (1, 2 or 5 × 10^k) covering hi.
inline void nice_axis(double hi, double& top, double& step) {
  if (!(hi > 0) || !std::isfinite(hi)) hi = 1;
  const double raw = hi / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  top = std::ceil(hi / step - 1e-9) * step;
}

/// Frame shared by bar and line charts: title, y axis with grid and ticks,
/// rotated x labels, legend on the right. Returns the plot's pixel box.
struct Frame {
  int x0, y0, w, h;  // plot area: left, top, width, height
  double top;        // value at the top of the axis
  double y(double v) const { return y0 + h - (top > 0 ? v / top : 0) * h; }
};

inline Frame open_chart(std::ostringstream& s, const std::string& title, const std::string& y_label,
                        const std::vector<std::string>& x_labels, const std::vector<std::string>& series, double hi,
                        int plot_w) {
  constexpr int kLeft = 70, kTop = 40, kPlotH = 260;
  // Room for the longest legend entry and rotated x label (~6 px a character).
  std::size_t legend_chars = 0, x_chars = 0;
  for (const auto& n : series) legend_chars = std::max(legend_chars, n.size());
  for (const auto& n : x_labels) x_chars = std::max(x_chars, n.size());
  const int kLegendW = std::max(190, int(legend_chars) * 6 + 30);
  const int kXLabelH = std::max(110, int(double(x_chars) * 6 * 0.71) + 20);
  double top, step;
  nice_axis(hi, top, step);
  const int width = kLeft + plot_w + 30 + kLegendW, height = kTop + kPlotH + kXLabelH;
  Frame fr{kLeft, kTop, plot_w, kPlotH, top};
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">" << xml_escape(title) << "</text>\n";
  for (double v = 0; v <= top + step / 2; v += step) {
    const double y = fr.y(v);
    s << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft + plot_w << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#dddddd\"/>\n<text x=\"" << kLeft - 4 << "\" y=\"" << y + 3 << "\" text-anchor=\"end\">"
      << fmt(v) << "</text>\n";
  }
  s << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft << "\" y1=\"" << kTop << "\" y2=\"" << kTop + kPlotH
    << "\" stroke=\"black\"/>\n<line x1=\"" << kLeft << "\" x2=\"" << kLeft + plot_w << "\" y1=\"" << kTop + kPlotH
    << "\" y2=\"" << kTop + kPlotH << "\" stroke=\"black\"/>\n";
  s << "<text transform=\"translate(16," << kTop + kPlotH / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << xml_escape(y_label) << "</text>\n";
  const double slot = x_labels.empty() ? 0 : double(plot_w) / double(x_labels.size());
  for (std::size_t i = 0; i < x_labels.size(); ++i)
    s << "<text transform=\"translate(" << kLeft + slot * (double(i) + 0.5) + 3 << "," << kTop + kPlotH + 10
      << ") rotate(-45)\" text-anchor=\"end\">" << xml_escape(x_labels[i]) << "</text>\n";
  for (std::size_t k = 0; k < series.size(); ++k) {
    const int ly = kTop + 14 * int(k);
    s << "<rect x=\"" << kLeft + plot_w + 30 << "\" y=\"" << ly << "\" width=\"10\" height=\"10\" fill=\""
      << series_color(k) << "\"/>\n<text x=\"" << kLeft + plot_w + 44 << "\" y=\"" << ly + 9 << "\">"
      << xml_escape(series[k]) << "</text>\n";
  }
  return fr;
}

inline double at(const std::vector<std::vector<double>>& v, std::size_t a, std::size_t b) {
  return a < v.size() && b < v[a].size() && std::isfinite(v[a][b]) ? v[a][b] : 0.0;
}

}  // namespace detail

/// Grouped or stacked bar chart (one <rect> with a <title> per bar).
inline std::string render_bar_chart(const BarChart& c) {
  double hi = 0;
  for (std::size_t g = 0; g < c.groups.size(); ++g) {
    double stack = 0;
    for (std::size_t k = 0; k < c.series.size(); ++k) {
      const double v = detail::at(c.values, k, g);
      stack += v;
      hi = std::max(hi, c.stacked ? stack : v + detail::at(c.errors, k, g));
    }
  }
  const std::size_t per_group = c.stacked ? 1 : std::max<std::size_t>(1, c.series.size());
  const int plot_w = std::max(300, int(c.groups.size() * (per_group * 9 + 12)));
  std::ostringstream s;
  const detail::Frame fr = detail::open_chart(s, c.title, c.y_label, c.groups, c.series, hi, plot_w);
  const double slot = c.groups.empty() ? 0 : double(fr.w) / double(c.groups.size());
  const double bar = slot * 0.8 / double(per_group);
  for (std::size_t g = 0; g < c.groups.size(); ++g) {
    double base = 0;
    for (std::size_t k = 0; k < c.series.size(); ++k) {
      const double v = detail::at(c.values, k, g);
      const double x = fr.x0 + slot * double(g) + slot * 0.1 + (c.stacked ? 0.0 : bar * double(k));
      const double y_top = fr.y(base + v), y_bot = fr.y(base);
      s << "<rect x=\"" << x << "\" y=\"" << y_top << "\" width=\"" << bar << "\" height=\"" << y_bot - y_top
        << "\" fill=\"" << detail::series_color(k) << "\"><title>"
        << detail::xml_escape(c.groups[g] + " / " + c.series[k] + ": " + detail::fmt(v)) << "</title></rect>\n";
      const double e = detail::at(c.errors, k, g);
      if (!c.stacked && e > 0) {
        const double xm = x + bar / 2;
        s << "<line x1=\"" << xm << "\" x2=\"" << xm << "\" y1=\"" << fr.y(v + e) << "\" y2=\"" << fr.y(std::max(0.0, v - e))
          << "\" stroke=\"black\"/>\n";
      }
      if (c.stacked) base += v;
    }
  }
  s << "</svg>\n";
  return s.str();
}

/// Line chart with markers and optional ± whiskers (one <circle> with a <title> per point).
inline std::string render_line_chart(const LineChart& c) {
  double hi = 0;
  for (std::size_t k = 0; k < c.series.size(); ++k)
    for (std::size_t i = 0; i < c.x_labels.size(); ++i)
      hi = std::max(hi, detail::at(c.values, k, i) + detail::at(c.spread, k, i));
  const int plot_w = std::max(300, int(c.x_labels.size()) * 60);
  std::ostringstream s;
  const detail::Frame fr = detail::open_chart(s, c.title, c.y_label, c.x_labels, c.series, hi, plot_w);
  const double slot = c.x_labels.empty() ? 0 : double(fr.w) / double(c.x_labels.size());
  for (std::size_t k = 0; k < c.series.size(); ++k) {
    std::string points;
    for (std::size_t i = 0; i < c.x_labels.size(); ++i)
      points += (i ? " " : "") + detail::fmt(fr.x0 + slot * (double(i) + 0.5)) + "," + detail::fmt(fr.y(detail::at(c.values, k, i)));
    s << "<polyline fill=\"none\" stroke=\"" << detail::series_color(k) << "\" stroke-width=\"2\" points=\"" << points
      << "\"/>\n";
    for (std::size_t i = 0; i < c.x_labels.size(); ++i) {
      const double v = detail::at(c.values, k, i), e = detail::at(c.spread, k, i);
      const double x = fr.x0 + slot * (double(i) + 0.5);
      if (e > 0)
        s << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << fr.y(v + e) << "\" y2=\"" << fr.y(std::max(0.0, v - e))
          << "\" stroke=\"" << detail::series_color(k) << "\"/>\n";
      s << "<circle cx=\"" << x << "\" cy=\"" << fr.y(v) << "\" r=\"3\" fill=\"" << detail::series_color(k) << "\"><title>"
        << detail::xml_escape(c.x_labels[i] + " / " + c.series[k] + ": " + detail::fmt(v) +
                              (e > 0 ? " ± " + detail::fmt(e) : ""))
        << "</title></circle>\n";
    }
  }
  s << "</svg>\n";
  return s.str();
}

/// Points on two numeric axes, one colour per series: per-question results of
/// one model against another. `diagonal` draws y = x (no change); `jitter`
/// (in axis units) spreads points that share a value, as 0–3 scores do, by a
/// fixed pseudo-random offset per point so the plot is reproducible.
struct ScatterChart {
  std::string title, x_label, y_label;
  std::vector<std::string> series;
  std::vector<std::vector<double>> x, y;          // [series][point]
  std::vector<std::vector<std::string>> labels;   // [series][point] tooltips, optional
  bool diagonal = false;
  double jitter = 0.0;
  double range_lo = NAN, range_hi = NAN;  // fixed axis range (a 0–3 score scale); NaN: from the data
};

inline std::string render_scatter_chart(const ScatterChart& c) {
  constexpr int kLeft = 70, kTop = 40, kPlot = 320, kBottom = 50;
  std::size_t longest = 0;
  for (const auto& name : c.series) longest = std::max(longest, name.size());
  const int kLegendW = std::max(190, int(longest) * 6 + 30);  // ~6 px per character at 10 px
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  auto finite = [](double v) { return std::isfinite(v); };
  for (std::size_t k = 0; k < c.series.size(); ++k)
    for (std::size_t i = 0; i < c.x[k].size() && i < c.y[k].size(); ++i)
      if (finite(c.x[k][i]) && finite(c.y[k][i])) {
        lo = std::min({lo, c.x[k][i], c.y[k][i]});
        hi = std::max({hi, c.x[k][i], c.y[k][i]});
      }
  if (!(hi >= lo)) lo = 0, hi = 1;
  if (finite(c.range_lo)) lo = c.range_lo;
  if (finite(c.range_hi)) hi = c.range_hi;
  // One shared range for both axes, so the diagonal is the 45° line; ticks
  // at a "nice" step over the data's range, not from zero.
  double unused, step;
  detail::nice_axis(hi > lo ? hi - lo : 1.0, unused, step);
  const double base = finite(c.range_lo) ? c.range_lo : std::floor(lo / step + 1e-9) * step;
  const double top = finite(c.range_hi) ? c.range_hi : std::ceil(hi / step - 1e-9) * step;
  const double span = (top > base ? top - base : 1.0) + c.jitter;
  auto px = [&](double v) { return kLeft + (v - base) / span * kPlot; };
  auto py = [&](double v) { return kTop + kPlot - (v - base) / span * kPlot; };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kLeft + kPlot + 30 + kLegendW << "\" height=\""
    << kTop + kPlot + kBottom << "\" font-family=\"sans-serif\" font-size=\"10\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">" << detail::xml_escape(c.title) << "</text>\n";
  for (double v = base; v <= top + step / 2; v += step) {
    s << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft + kPlot << "\" y1=\"" << py(v) << "\" y2=\"" << py(v)
      << "\" stroke=\"#dddddd\"/>\n<text x=\"" << kLeft - 4 << "\" y=\"" << py(v) + 3 << "\" text-anchor=\"end\">"
      << detail::fmt(v) << "</text>\n";
    s << "<line x1=\"" << px(v) << "\" x2=\"" << px(v) << "\" y1=\"" << kTop << "\" y2=\"" << kTop + kPlot
      << "\" stroke=\"#dddddd\"/>\n<text x=\"" << px(v) << "\" y=\"" << kTop + kPlot + 14
      << "\" text-anchor=\"middle\">" << detail::fmt(v) << "</text>\n";
  }
  s << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kPlot << "\" height=\"" << kPlot
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  if (c.diagonal)
    s << "<line x1=\"" << px(base) << "\" y1=\"" << py(base) << "\" x2=\"" << px(top + c.jitter) << "\" y2=\""
      << py(top + c.jitter) << "\" stroke=\"#999999\" stroke-dasharray=\"4,3\"/>\n";
  s << "<text x=\"" << kLeft + kPlot / 2 << "\" y=\"" << kTop + kPlot + 34 << "\" text-anchor=\"middle\">"
    << detail::xml_escape(c.x_label) << "</text>\n";
  s << "<text transform=\"translate(16," << kTop + kPlot / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << detail::xml_escape(c.y_label) << "</text>\n";
  std::uint32_t state = 0x9e3779b9u;
  auto next = [&] {  // xorshift: the same jitter on every run
    state ^= state << 13, state ^= state >> 17, state ^= state << 5;
    return double(state) / 4294967296.0;
  };
  for (std::size_t k = 0; k < c.series.size(); ++k) {
    const int ly = kTop + 14 * int(k);
    s << "<circle cx=\"" << kLeft + kPlot + 35 << "\" cy=\"" << ly + 5 << "\" r=\"4\" fill=\"" << detail::series_color(k)
      << "\"/>\n<text x=\"" << kLeft + kPlot + 44 << "\" y=\"" << ly + 9 << "\">" << detail::xml_escape(c.series[k])
      << "</text>\n";
    for (std::size_t i = 0; i < c.x[k].size() && i < c.y[k].size(); ++i) {
      const double x = c.x[k][i], y = c.y[k][i];
      if (!finite(x) || !finite(y)) continue;
      const double jx = c.jitter * next(), jy = c.jitter * next();
      const std::string tip = (k < c.labels.size() && i < c.labels[k].size() ? c.labels[k][i] + ": " : std::string()) +
                              detail::fmt(x) + ", " + detail::fmt(y);
      s << "<circle cx=\"" << px(x + jx) << "\" cy=\"" << py(y + jy) << "\" r=\"3\" fill=\"" << detail::series_color(k)
        << "\" fill-opacity=\"0.7\"><title>" << detail::xml_escape(tip) << "</title></circle>\n";
    }
  }
  s << "</svg>\n";
  return s.str();
}

/// Several charts in one SVG file, one under the other (a file has one root
/// element, so the charts are nested <svg> elements placed by their heights).
inline std::string stack_charts(const std::vector<std::string>& charts) {
  auto attr = [](const std::string& svg, const char* name) {
    const std::string key = std::string(" ") + name + "=\"";
    const std::size_t p = svg.find(key);
    return p == std::string::npos ? 0 : std::atoi(svg.c_str() + p + key.size());
  };
  int width = 0, height = 0;
  std::string body;
  for (const std::string& c : charts) {
    if (c.rfind("<svg ", 0) != 0) continue;
    body += "<svg y=\"" + std::to_string(height) + "\"" + c.substr(4);
    width = std::max(width, attr(c, "width"));
    height += attr(c, "height");
  }
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
         std::to_string(height) + "\">\n" + body + "</svg>\n";
}

}  // namespace qlora::report
