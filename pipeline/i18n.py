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
        "r_title": "Land-use carbon balance and risk", "r_headline": "Headline", "r_risk": "Risk of the {plural}",
        "r_top": "Units at highest risk", "r_flux": "Net carbon flux density", "r_land": "Land use",
        "r_coefs": "Coefficients and their sources", "r_coef_note": "Sources positive, sinks negative. ⚠ unverified: no primary source was found.",
        "r_warnings": "Warnings", "r_none": "none", "r_methods": "Methods and defaults", "r_provenance": "Provenance",
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
        "r_title": "土地利用碳收支与碳风险", "r_headline": "主要结果", "r_risk": "{plural} 碳风险",
        "r_top": "风险最高的单元", "r_flux": "净碳通量密度", "r_land": "土地利用",
        "r_coefs": "碳排放系数及其来源", "r_coef_note": "碳源为正，碳汇为负。⚠ unverified：未找到原始文献来源。",
        "r_warnings": "预警与提示", "r_none": "无", "r_methods": "方法与默认值", "r_provenance": "数据来源与可复现信息",
    },
}


def text(key: str, lang: str = "en", **values) -> str:
    """The message ``key`` in ``lang`` (English if missing), formatted with ``values``."""
    template = MESSAGES.get(lang, {}).get(key) or MESSAGES["en"][key]
    return template.format(**values)
