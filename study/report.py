"""Study reports: tidy CSVs, JSON, Markdown and HTML with a chart, and a data dictionary."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from study import analysis
from study.protocol import find_study

# Every column of trials.csv: (meaning, type, units, allowed values)
DATA_DICTIONARY = {
    "study": ("study name", "string", "", "any"),
    "mode": ("task: single image (real or colorized?) or two-alternative forced choice", "string", "", "single, 2afc"),
    "participant_id": ("participant number within the database (not an external id)", "integer", "", ">= 1"),
    "status": ("participant's session state", "string", "", "active, completed, abandoned"),
    "list_index": ("Latin-square list the participant was assigned", "integer", "", "0 .. lists - 1"),
    "age_band": ("self-reported age band (optional)", "string", "years", "18-24, 25-34, 35-44, 45-54, 55-64, 65+, empty"),
    "color_vision": ("self-reported colour vision (optional)", "string", "", "normal, deficient, unsure, empty"),
    "screen": ("self-reported screen type (optional)", "string", "", "phone, tablet, laptop, desktop, empty"),
    "window_width": ("browser window width at Start (measured)", "integer", "CSS pixels", ">= 0, empty"),
    "window_height": ("browser window height at Start (measured)", "integer", "CSS pixels", ">= 0, empty"),
    "touch_only": ("the device had no mouse or trackpad (touch only) at Start", "boolean", "", "true, false, empty"),
    "is_simulated": ("row made by `study simulate`, not a person", "boolean", "", "true, false"),
    "trial_id": ("trial number within the database", "integer", "", ">= 1"),
    "position": ("order in which the participant saw the trial", "integer", "", ">= 0"),
    "kind": ("trial type; practice and sentinel trials are not in the acceptance numbers", "string", "",
             "practice, main, sentinel"),
    "condition": ("what was judged: real photo, a model's colorization, or an attention check", "string", "",
                  "real, <model name>, sentinel"),
    "real_side": ("2AFC: side of the real photo (0 = left/first, 1 = right/second)", "integer", "", "0, 1, empty"),
    "photo_id": ("source photo number", "integer", "", ">= 1"),
    "photo": ("source photo's file name (never shown to participants)", "string", "", "any"),
    "stimulus_id": ("opaque id of the (first) image shown", "string", "", "24 hex digits"),
    "is_real": ("the (first) image shown is the real photo", "boolean", "", "true, false"),
    "sentinel_kind": ("how an attention-check fake was made", "string", "", "hue_rotated, channel_swapped, empty"),
    "psnr": ("PSNR of the (first) image against the real photo", "float", "dB", ">= 0, empty for real"),
    "ssim": ("SSIM of the (first) image against the real photo (RGB)", "float", "", "-1 .. 1, empty for real"),
    "mse": ("mean squared error of the (first) image's RGB in [0, 1] against the real photo", "float", "",
            ">= 0, empty for real"),
    "colorfulness": ("Hasler-Suesstrunk colourfulness of the (first) image", "float", "", ">= 0"),
    "other_stimulus_id": ("2AFC: opaque id of the second image", "string", "", "24 hex digits, empty"),
    "other_psnr": ("2AFC: PSNR of the second image", "float", "dB", ">= 0, empty"),
    "other_ssim": ("2AFC: SSIM of the second image", "float", "", "-1 .. 1, empty"),
    "other_mse": ("2AFC: MSE of the second image", "float", "", ">= 0, empty"),
    "other_colorfulness": ("2AFC: colourfulness of the second image", "float", "", ">= 0, empty"),
    "answer": ("the answer given", "string", "", "single: real, fake; 2afc: 0, 1 (side chosen as real); empty"),
    "judged_real": ("single: answered real; 2AFC: the fake was chosen as real (fooled)", "boolean", "", "true, false, empty"),
    "correct": ("the answer was right", "boolean", "", "true, false, empty"),
    "response_ms": ("time from image onset to answer, measured in the browser", "float", "ms", ">= 0, empty"),
    "intended_display_ms": ("how long images were meant to be shown (empty: until answered)", "integer", "ms", "> 0, empty"),
    "measured_display_ms": ("how long the image was actually on screen, measured in the browser", "float", "ms",
                            ">= 0, empty"),
    "answered_at": ("when the answer was stored", "timestamp", "UTC", "ISO 8601"),
    "fake_psnr": ("PSNR of the colorized image of the trial", "float", "dB", ">= 0, empty"),
    "fake_ssim": ("SSIM of the colorized image of the trial", "float", "", "-1 .. 1, empty"),
    "fake_mse": ("MSE of the colorized image of the trial", "float", "", ">= 0, empty"),
    "fake_colorfulness": ("colourfulness of the colorized image of the trial", "float", "", ">= 0, empty"),
    "answered": ("the trial has a response (not counting an interrupted one)", "boolean", "", "true, false"),
    "interrupted": ("a timed trial shown, then cut short by a reload: never shown again, left out", "boolean", "",
                    "true, false"),
}


@dataclass
class StudyReport:
    study: dict
    trials: pd.DataFrame
    participants: pd.DataFrame
    acceptance: pd.DataFrame
    pairwise: pd.DataFrame
    per_photo: pd.DataFrame
    correlations: pd.DataFrame
    exclusions: dict
    simulated_participants: int = 0  # left out of every number above


def analyse(engine: Engine, study_name: str | None = None, bootstrap_repeats: int = 1000,
            include_simulated: bool = False) -> StudyReport:
    """Every table of the report. Simulated participants are counted apart and left out, unless
    ``include_simulated`` (a dry run on its own database)."""
    with Session(engine) as session:
        study = find_study(session, study_name)  # StudyError is a ValueError
        info = {"name": study.name, "mode": study.mode, "presentation": study.presentation,
                "display_ms": study.display_ms, "consent_version": study.consent_version,
                "exclusion_rules": study.exclusion_rules, "lists": study.list_count,
                "models_per_participant": study.models_per_participant,
                "conditions": [c.name for c in study.conditions], "created_at": study.created_at.isoformat(),
                "condition_details": [{"condition": c.name, "description": "the photo itself" if c.is_real
                                       else c.description, "weights_sha256": c.weights_sha256 or ""}
                                      for c in study.conditions]}
        rules = dict(study.exclusion_rules)
    trials = analysis.load_trials(engine, info["name"], include_simulated=include_simulated)
    simulated = 0
    if not include_simulated:
        everyone = analysis.load_trials(engine, info["name"], include_simulated=True)
        simulated = int(everyone.loc[everyone["is_simulated"].fillna(False).astype(bool), "participant_id"].nunique())
    info["includes_simulated"] = include_simulated
    frame = analysis.analysable(trials, rules)
    per_photo = analysis.per_photo_table(frame) if len(frame) else pd.DataFrame()
    return StudyReport(
        study=info, trials=trials, participants=analysis.participant_table(trials, rules),
        acceptance=analysis.acceptance_table(frame, bootstrap_repeats), pairwise=analysis.pairwise_differences(frame)
        if len(frame) else pd.DataFrame(), per_photo=per_photo,
        correlations=analysis.metric_correlations(per_photo) if len(per_photo) else pd.DataFrame(),
        exclusions=analysis.exclusion_summary(trials, rules), simulated_participants=simulated)


# Published single-image public acceptance of systems the source papers report (DeepColor, paper 002; Deep
# Koalarization, which Manipal's system follows): drawn as reference marks beside our conditions of the same system.
PUBLISHED_ACCEPTANCE = {"deepcolor-unet": ("DeepColor U-Net", 0.53), "deepcolor-densenet": ("DeepColor DenseNet", 0.46),
                        "manipal-fusion": ("Deep Koalarization", 0.4587)}

# What each column of the acceptance table means, for report.md and report.html.
COLUMN_MEANINGS = {
    "condition": "the real photos, or a model (by name; its weights' SHA-256 is in the conditions table)",
    "n": "answered main trials of kept participants",
    "judged_real": "trials in which the shown (single) or colorized (2AFC) photo was taken for real",
    "rate": "judged_real / n: public acceptance (single) or fool rate (2AFC; 50% = indistinguishable)",
    "ci_low, ci_high": "95% interval from a logistic model with participants and photos as crossed clusters",
    "p_vs_half": "2AFC: the test of the fool rate against 50% (same model)",
    "wilson_naive_low, wilson_naive_high": "Wilson interval treating every trial as independent: too narrow",
    "bootstrap_low, bootstrap_high": "a second interval: resampling participants and photos (cluster bootstrap)",
    "relative_to_real": "single mode: the model's rate divided by the real photos' rate (1 = as real as real)",
    "d_prime": "single mode: sensitivity z(hit) - z(false alarm), real photos as signal; 0 = indistinguishable",
    "criterion": "single mode: the bias -(z(hit) + z(false alarm)) / 2; negative = inclined to answer 'real'",
}


def acceptance_chart(report: StudyReport, path: Path | None = None):
    """Horizontal bars of acceptance (or fool rate) per condition with the primary 95% intervals (clustered by
    participant and photo), readable with a dozen conditions; published rates of the same systems as marks. Saved
    if ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = report.acceptance
    rows = max(len(table), 1)
    figure, axis = plt.subplots(figsize=(7.2, 1.2 + 0.42 * rows))
    two_afc = report.study["mode"] == "2afc"
    if len(table):
        positions = list(range(len(table)))[::-1]  # first condition on top
        colors = ["#6b7280" if c == "real" else "#d97706" for c in table["condition"]]
        errors = [(table["rate"] - table["ci_low"]).fillna(0) * 100, (table["ci_high"] - table["rate"]).fillna(0) * 100]
        axis.barh(positions, table["rate"] * 100, xerr=errors, capsize=4, color=colors, height=0.6)
        axis.set_yticks(positions, [str(c) for c in table["condition"]], fontsize=9)
        for y, (rate, n) in zip(positions, zip(table["rate"], table["n"])):
            axis.text(1.5, y, f"{rate:.0%}  n={n}", va="center", ha="left", color="white", fontsize=8)
        marked = False
        for y, condition in zip(positions, table["condition"]):
            if condition in PUBLISHED_ACCEPTANCE and not two_afc:
                name, rate = PUBLISHED_ACCEPTANCE[condition]
                axis.plot([rate * 100], [y], marker="D", linestyle="none", color="black", markersize=6,
                          label=None if marked else "published acceptance of the same system")
                marked = True
        if marked:
            axis.legend(loc="lower right", fontsize=7)
    if two_afc:
        axis.axvline(50, color="black", linestyle="--", linewidth=1)
        axis.text(50.5, -0.9 if len(table) else 0, "indistinguishable (50%)", fontsize=7)
    axis.set_xlabel("fooled: colorized photo picked as real (%)" if two_afc else "judged real (%)")
    axis.set_xlim(0, 100)
    axis.set_title(f"{report.study['name']}: {'fool rate' if two_afc else 'public acceptance'} "
                   "(95% CI, clustered by participant and photo)", fontsize=9)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=110)
        plt.close(figure)
    return figure


def column_meanings(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, meaning) for the acceptance table's columns that are present."""
    present = set(table.columns)
    return [(name, meaning) for name, meaning in COLUMN_MEANINGS.items()
            if any(part.strip() in present for part in name.split(","))]


def format_p(value) -> str:
    """p-values as people read them: 0.012, or < 0.001 (never 0.000)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+-.!|~"})


def escape_markdown(text: str) -> str:
    """User-supplied text (photo file names, model names) as literal Markdown: no links, tags or table breaks."""
    return str(text).replace("\n", " ").translate(_MARKDOWN_SPECIAL)


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty:
        return "_no data yet_\n"

    def cell(column, value):
        if value is None or value is pd.NA:
            return ""
        if isinstance(value, float):
            if math.isnan(value):
                return ""
            return format_p(value) if column.startswith("p_") else f"{value:.3f}"
        return escape_markdown(value)
    lines = ["| " + " | ".join(escape_markdown(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row)) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (=, +, -, @...) get a leading apostrophe (OWASP's CSV
    injection advice); numbers are left alone."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return safe


def json_safe(value):
    """NaN and infinities become null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is pd.NA:
        return None
    return value


def markdown(report: StudyReport, chart_name: str = "acceptance.png") -> str:
    s, e = report.study, report.exclusions
    metric = "fool rate (fake picked as real)" if s["mode"] == "2afc" else "public acceptance (judged real)"
    simulated = (f"\nSimulated participants: {report.simulated_participants}, not counted in any number below.\n"
                 if report.simulated_participants else "")
    if s.get("includes_simulated"):
        simulated = "\n**This report includes simulated participants: it is a dry run, not a result.**\n"
    return f"""# Study report: {escape_markdown(s['name'])}

Mode: **{s['mode']}**{' (' + s['presentation'] + ')' if s['mode'] == '2afc' else ''}; display time:
{str(s['display_ms']) + ' ms' if s['display_ms'] else 'until answered'}; consent version {s['consent_version']}.

Exclusion rules (fixed when the study was built): `{json.dumps(s['exclusion_rules'])}`.
Participants: **{e['participants_before']}** before exclusions, **{e['participants_after']}** after
({e['excluded_incomplete']} incomplete, {e['excluded_failed_sentinels']} failed attention checks,
{e['excluded_too_fast']} too fast, {e['excluded_same_answer']} nearly always the same answer). Main trials:
{e['trials_before']} before, {e['trials_after']} after.{simulated}
Intervals and tests: `ci_low`/`ci_high` (and `p_vs_half`) come from a logistic model of every answer with
participants and photos as crossed clusters (two-way cluster-robust errors); `wilson_naive_*` treats every trial as
independent and is too narrow when people or photos differ. Model differences are tested by flipping the two
models' labels photo by photo (a randomisation test), Holm-corrected.{' `p_vs_half` tests each fool rate against 50%.' if s['mode'] == '2afc' else ''}

## Conditions

Each model's weights file (with its preset) by SHA-256: a shipped name can later hold better weights.

{_markdown_table(pd.DataFrame(s['condition_details']))}
## {metric[0].upper() + metric[1:]} per condition

![chart]({chart_name})

{_markdown_table(report.acceptance)}
What the columns mean:

{chr(10).join(f"- `{name}`: {meaning}" for name, meaning in column_meanings(report.acceptance))}
{_published_note(s['mode'])}
## Pairwise model differences (photo-level label-flip test, Holm-corrected)

{_markdown_table(report.pairwise)}
## Which automatic metric predicts people? (Spearman over photos, within each model)

{_markdown_table(report.correlations)}
## Per photo

{_markdown_table(report.per_photo)}
## Per participant

{_markdown_table(report.participants)}"""


def _published_note(mode: str) -> str:
    marks = ", ".join(f"{name} {rate:.1%}" for name, rate in PUBLISHED_ACCEPTANCE.values())
    if mode == "2afc":
        return (f"Published single-image acceptance ({marks}) measures another thing than a 2AFC fool rate: it is "
                "not drawn here.\n")
    return f"Diamonds on the chart: the published single-image acceptance of the same systems ({marks}).\n"


def html_page(report: StudyReport, chart_name: str = "acceptance.png") -> str:
    s = report.study
    sections = [("Conditions", pd.DataFrame(s["condition_details"])),
                ("Acceptance per condition", report.acceptance), ("Pairwise differences", report.pairwise),
                ("Metric correlations", report.correlations), ("Per photo", report.per_photo),
                ("Per participant", report.participants)]
    body = "".join(f"<h2>{html.escape(title)}</h2>" + (frame.to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                                                       na_rep="") if frame is not None and len(frame)
                                                       else "<p><em>no data yet</em></p>") for title, frame in sections)
    e = report.exclusions
    meanings = "".join(f"<dt><code>{html.escape(name)}</code></dt><dd>{html.escape(meaning)}</dd>"
                       for name, meaning in column_meanings(report.acceptance))
    simulated = ""
    if s.get("includes_simulated"):
        simulated = "<p><strong>This report includes simulated participants: it is a dry run, not a result.</strong></p>"
    elif report.simulated_participants:
        simulated = (f"<p>Simulated participants: {report.simulated_participants}, not counted in any number "
                     "below.</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Study report: {html.escape(s['name'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:14px}}td,th{{border:1px solid #ccc;padding:3px 8px}}</style></head><body>
<h1>Study report: {html.escape(s['name'])}</h1>
<p>Mode {html.escape(s['mode'])}; participants {e['participants_before']} before and {e['participants_after']} after
exclusions; main trials {e['trials_before']} before and {e['trials_after']} after.</p>{simulated}
<img src="{chart_name}" alt="acceptance chart" style="max-width:100%">
<h2>What the acceptance table's columns mean</h2><dl>{meanings}</dl>
<p>{html.escape(_published_note(s['mode']))}</p>{body}</body></html>"""


def dictionary_frame() -> pd.DataFrame:
    return pd.DataFrame([{"column": k, "meaning": v[0], "type": v[1], "units": v[2], "allowed_values": v[3]}
                         for k, v in DATA_DICTIONARY.items()])


def write_report(engine: Engine, out: str | Path, study_name: str | None = None,
                 bootstrap_repeats: int = 1000, include_simulated: bool = False) -> list[Path]:
    """Writes every report file into ``out`` and returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = analyse(engine, study_name, bootstrap_repeats, include_simulated)
    missing = set(report.trials.columns) - set(DATA_DICTIONARY)
    assert not missing, f"data dictionary lacks {missing}"  # internal invariant: every exported column documented
    files = {
        "trials.csv": report.trials, "participants.csv": report.participants, "acceptance.csv": report.acceptance,
        "pairwise.csv": report.pairwise, "per_photo.csv": report.per_photo, "correlations.csv": report.correlations,
        "data_dictionary.csv": dictionary_frame(),
    }
    written = []
    for name, frame in files.items():
        spreadsheet_safe(frame).to_csv(out / name, index=False)
        written.append(out / name)
    acceptance_chart(report, out / "acceptance.png")
    summary = {"study": report.study, "exclusions": report.exclusions,
               "simulated_participants_not_counted": report.simulated_participants,
               "acceptance": report.acceptance.to_dict(orient="records"),
               "pairwise": report.pairwise.to_dict(orient="records"),
               "correlations": report.correlations.to_dict(orient="records")}
    (out / "summary.json").write_text(json.dumps(json_safe(summary), indent=2, default=str, allow_nan=False))
    (out / "report.md").write_text(markdown(report))
    (out / "report.html").write_text(html_page(report))
    (out / "data_dictionary.md").write_text("# Data dictionary of trials.csv\n\n" + _markdown_table(dictionary_frame()))
    written += [out / n for n in ("acceptance.png", "summary.json", "report.md", "report.html", "data_dictionary.md")]
    written += write_psych_ds(report, out / "psych-ds")
    return written


def write_psych_ds(report: StudyReport, folder: Path) -> list[Path]:
    """The trials as a Psych-DS dataset (psych-ds.github.io): ``dataset_description.json`` (schema.org Dataset with
    every variable described) and ``data/study-<name>_data.csv``."""
    import re

    (folder / "data").mkdir(parents=True, exist_ok=True)
    keyword = re.sub(r"[^A-Za-z0-9]+", "", str(report.study["name"])) or "study"
    data = folder / "data" / f"study-{keyword}_data.csv"
    spreadsheet_safe(report.trials).to_csv(data, index=False)
    description = {
        "@context": "https://schema.org/", "@type": "Dataset",
        "name": f"Colorizer perception study '{report.study['name']}'",
        "description": ("One row per trial of a real-vs-colorized photo study (study/PROTOCOL.md): which stimuli were "
                        "shown, the answer, response and display times. Simulated participants are "
                        + ("included (a dry run)." if report.study.get("includes_simulated") else "left out.")),
        "variableMeasured": [{"@type": "PropertyValue", "name": column, "description": DATA_DICTIONARY[column][0],
                              "unitText": DATA_DICTIONARY[column][2] or None}
                             for column in report.trials.columns],
    }
    path = folder / "dataset_description.json"
    path.write_text(json.dumps(json_safe(description), indent=2))
    return [path, data]
