/* Small inline-SVG charts for `specline report`: one plot at a time into a growable
 * buffer, with axes, "nice" ticks (linear or decade ticks on a log scale), markers, error
 * bars, lines, shaded bands, reference lines and a legend; plus HTML escaping. Output is
 * plain SVG 1.1 elements meant to sit inside an HTML5 page (no script, no external
 * assets). Data outside the range is clipped to the plot area. Not thread-safe on one
 * plot; no global state. */
#ifndef SPECLINE_CLI_REPORT_SVG_H
#define SPECLINE_CLI_REPORT_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include "specline/util.h"

/* Appends s with &, <, >, " and ' escaped; NULL appends nothing. */
void sl_html_escape(sl_buf_t *b, const char *s);
/* printf, then escaped. */
void sl_html_escapef(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A running min/max of finite values (caller storage). */
typedef struct sl_svg_range {
  double lo, hi;
  bool any;
} sl_svg_range_t;
void sl_svg_range_init(sl_svg_range_t *r);
/* Adds v when finite (and > 0 when positive_only, for log axes). */
void sl_svg_range_add(sl_svg_range_t *r, double v, bool positive_only);
/* Widens an empty or degenerate range and pads it by frac of its width on each side. */
void sl_svg_range_pad(sl_svg_range_t *r, double frac);

typedef enum sl_svg_marker {
  SL_SVG_DOT = 0,  /* filled circle */
  SL_SVG_TRIANGLE, /* filled triangle */
  SL_SVG_CROSS,    /* x */
  SL_SVG_SQUARE,   /* hollow square */
  SL_SVG_RING,     /* hollow circle, larger */
} sl_svg_marker_t;

/* Where sl_svg_plot_end puts the legend: a box in a corner of the plot area, or one row
 * under the x axis (SL_SVG_BELOW, for plots whose data fills every corner; the <svg> is
 * then 22 px taller than asked, so it must be chosen at sl_svg_plot_begin). */
typedef enum sl_svg_corner {
  SL_SVG_TOP_LEFT = 0,
  SL_SVG_TOP_RIGHT,
  SL_SVG_BOTTOM_LEFT,
  SL_SVG_BOTTOM_RIGHT,
  SL_SVG_BELOW,
} sl_svg_corner_t;

/* One plot being drawn (caller storage). */
typedef struct sl_svg_plot {
  sl_buf_t *out;         /* borrowed: where the SVG goes */
  double w, h;           /* pixels */
  double ml, mr, mt, mb; /* margins */
  double x0, x1, y0, y1; /* data range */
  bool xlog, ylog;
  int id;                 /* for the clip path id, unique per document */
  bool open;              /* inside the clipped data group */
  sl_svg_corner_t legend; /* where the legend goes */
} sl_svg_plot_t;

/* Starts a plot of w × h pixels into out: the <svg> element, title, axis labels, grid and
 * ticks for the range [x0, x1] × [y0, y1] (log axes need positive ends), then opens the
 * clipped group the data goes into. id must differ between the plots of one page. */
void sl_svg_plot_begin(sl_svg_plot_t *p, sl_buf_t *out, int id, double w, double h, const char *title,
                       const char *xlabel, const char *ylabel, double x0, double x1, double y0, double y1,
                       bool xlog, bool ylog, sl_svg_corner_t legend);

/* Data elements (non-finite values, and non-positive ones on log axes, are skipped). */
void sl_svg_points(sl_svg_plot_t *p, size_t n, const double *x, const double *y, sl_svg_marker_t m,
                   const char *color, double size);
void sl_svg_errbars(sl_svg_plot_t *p, size_t n, const double *x, const double *ylo, const double *yhi,
                    const char *color);
/* A polyline through the points in order; dash NULL for solid. Breaks at skipped points. */
void sl_svg_line(sl_svg_plot_t *p, size_t n, const double *x, const double *y, const char *color,
                 double width, const char *dash);
/* A shaded band between lo and hi along x (x ascending). */
void sl_svg_band(sl_svg_plot_t *p, size_t n, const double *x, const double *lo, const double *hi,
                 const char *color, double opacity);
/* A horizontal band across the plot between y = lo and y = hi. */
void sl_svg_hband(sl_svg_plot_t *p, double lo, double hi, const char *color, double opacity);
/* Horizontal reference line with an optional label at its right end. */
void sl_svg_hline(sl_svg_plot_t *p, double y, const char *color, const char *dash, const char *label);

/* Closes the data group, draws the legend (n entries: label, marker or, when line is
 * true, a short line, and color; n may be 0) where sl_svg_plot_begin was told, and closes
 * the <svg>. */
typedef struct sl_svg_legend {
  const char *label;
  sl_svg_marker_t marker;
  bool line;
  const char *color;
} sl_svg_legend_t;
void sl_svg_plot_end(sl_svg_plot_t *p, const sl_svg_legend_t *legend, size_t n);

#endif
