"""Does text render, or is every Chinese character a box? A page's own font draws each character
of a sample on a canvas, next to a character no font has (U+10FFFD, private use): a character
drawn exactly like that one, or not at all, is missing from the machine's fonts (tofu). Used by
the browser tests of the playground page and of the web checkout, so they fail without the CJK
and emoji fonts that scripts/test.sh installs."""
from __future__ import annotations

CJK_SAMPLE = "腾讯电子签购买套餐"
EMOJI_SAMPLE = "📦☎🧾"
NO_FONT_HAS_IT = "\U0010fffd"

_CHECK = """
([sample, missing]) => {
  const font = getComputedStyle(document.body).fontFamily;
  const draw = (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 64;
    const g = canvas.getContext("2d");
    g.font = `40px ${font}`;
    g.textBaseline = "top";
    g.fillStyle = "#000";
    g.fillText(text, 8, 8);
    const alpha = [];
    const data = g.getImageData(0, 0, 64, 64).data;
    for (let i = 3; i < data.length; i += 4) alpha.push(data[i]);
    return alpha;
  };
  const tofu = draw(missing);
  const missingOnes = [];
  for (const ch of sample) {
    const drawn = draw(ch);
    const inked = drawn.filter((a) => a > 0).length;
    const differs = drawn.some((a, i) => a !== tofu[i]);
    if (!inked || !differs) missingOnes.push(ch);
  }
  return {font, missing: missingOnes};
}
"""


async def missing_glyphs(page, sample: str) -> list[str]:
    """The characters of `sample` the page cannot draw with the fonts it has."""
    result = await page.evaluate(_CHECK, [sample, NO_FONT_HAS_IT])
    return list(result["missing"])


async def assert_text_renders(page) -> None:
    """Chinese and emoji draw as themselves on this page (and the check itself can fail)."""
    assert await missing_glyphs(page, NO_FONT_HAS_IT + "\U0010fffc") == [NO_FONT_HAS_IT, "\U0010fffc"], \
        "the glyph check cannot tell a missing character"
    missing = await missing_glyphs(page, CJK_SAMPLE)
    assert missing == [], (f"Chinese characters render as boxes: {missing}; install a CJK font "
                           "(Debian: apt-get install fonts-noto-cjk; scripts/test.sh does)")
    missing = await missing_glyphs(page, EMOJI_SAMPLE)
    assert missing == [], (f"emoji render as boxes: {missing}; install an emoji font "
                           "(Debian: apt-get install fonts-noto-color-emoji; scripts/test.sh does)")
