"""Words of the console summary in English and Chinese (``output.lang`` / ``--lang``).

Machine names (columns, files, JSON keys) stay English; only what a person reads is
translated. Missing keys fall back to English.
"""

from __future__ import annotations

MESSAGES = {
    "en": {
        "totals": "{level} totals, {year} ({units})",
        "unit": "unit", "name": "name", "area": "area", "data": "data %", "source": "source", "sink": "sink", "net": "net",
        "net_per_ha": "net/ha", "total": "total",
        "inside": "Inside the {n} {plural} ({area} with data), {year}:",
        "fluxes": "  source {source} · sink {sink} · net {net} {unit}/yr",
        "cbc": " · CBC {cbc}",
        "whole": "Whole raster, cells outside the units included ({area}): net {net} {unit}/yr",
        "grid_only": "Whole raster ({area} with data), {year}:",
        "timing": "pass and outputs in {seconds:.1f} s",
        "wrote": "wrote {n} files into {folder}:",
        "undated": "undated",
    },
    "zh": {
        "totals": "{level}合计，{year}（{units}）",
        "unit": "代码", "name": "名称", "area": "面积", "data": "数据%", "source": "碳源", "sink": "碳汇", "net": "净排放",
        "net_per_ha": "每公顷", "total": "合计",
        "inside": "{n} 个{level}单元内（有数据面积 {area}），{year} 年：",
        "fluxes": "  碳源 {source} · 碳汇 {sink} · 净排放 {net} {unit}/年",
        "cbc": " · 碳收支系数 {cbc}",
        "whole": "整个栅格（含单元以外的像元，{area}）：净排放 {net} {unit}/年",
        "grid_only": "整个栅格（有数据面积 {area}），{year} 年：",
        "timing": "计算与输出用时 {seconds:.1f} 秒",
        "wrote": "已写出 {n} 个文件到 {folder}：",
        "undated": "未注明年份",
    },
}


def text(key: str, lang: str = "en", **values) -> str:
    """The message ``key`` in ``lang`` (English if missing), formatted with ``values``."""
    template = MESSAGES.get(lang, {}).get(key) or MESSAGES["en"][key]
    return template.format(**values)
