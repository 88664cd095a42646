"""Accessibility checks run inside the page: axe-core (from static/vendor, injected by the test
only) and WCAG contrast of text against the background it is drawn on."""

from pathlib import Path

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe" / "axe.min.js"
AA_TEXT = 4.5

# Relative luminance and contrast as WCAG 2 defines them; the background is the first opaque
# one up the tree, with translucent layers on the way blended over it.
_CONTRAST_JS = """
(el) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let bg = [255, 255, 255, 1];
  for (const layer of layers.reverse()) {
    const a = layer[3];
    bg = [0, 1, 2].map((i) => layer[i] * a + bg[i] * (1 - a)).concat(1);
  }
  const fg = parse(getComputedStyle(el).color);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return { ratio: (hi + 0.05) / (lo + 0.05), fg, bg, bgLuminance: lum(bg) };
}
"""


def contrast(page, selector: str) -> dict:
    """{ratio, fg, bg, bgLuminance} for the first element matching `selector`."""
    return page.locator(selector).first.evaluate(_CONTRAST_JS)


def assert_contrast(page, selectors, minimum: float = AA_TEXT) -> None:
    low = {}
    for selector in selectors:
        found = contrast(page, selector)
        if found["ratio"] < minimum:
            low[selector] = found
    assert low == {}, low


def axe_serious(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"] if v["impact"] in ("serious", "critical")
    ]


def _luminance(rgb: str) -> float:
    channels = [float(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(a: str, b: str) -> float:
    """WCAG contrast of two opaque computed colours ("rgb(r, g, b)")."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
