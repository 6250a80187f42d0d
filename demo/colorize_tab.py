"""The colorize tab: handlers as plain functions (tests call them directly) and the layout that wires them."""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from colorizer import ImageTooLargeError, InvalidImageError
from colorizer.imageio import first_frame_note, load_photo
from colorizer.inference import RGB_MAX_SHORT_SIDE
from demo.models import ModelPool

log = logging.getLogger(__name__)

PREVIEW_SIDE = 1600  # the before/after slider shows at most this many pixels on the long side
OUTPUT_TTL_SECONDS = 3600  # result files are removed after an hour
MAX_BATCH = 24  # photos per multi-file request


class RawImage(gr.Image):
    """``gr.Image`` that hands the uploaded file's path to the handler without opening it.

    Gradio's own preprocessing opens the file with Pillow, so a text file, a truncated JPEG or a decompression bomb
    would fail there with a generic error. Here the handler opens it and explains what is wrong.
    """

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path is None and payload.url and payload.url.startswith("data:"):
            return super().preprocess(payload)  # pasted data URLs: let Gradio decode them to a file
        return payload.path

    def get_block_name(self) -> str:
        return "image"  # same front-end component as gr.Image


@dataclass
class ColorizeResult:
    before: Image.Image  # preview of the input (gray), for the slider
    after: Image.Image  # preview of the result
    path: Path  # the full-resolution PNG
    info: str  # Markdown: size, time, device, model
    note: str = ""  # what the person should know about this file (only its first frame colorized, ...)


def output_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / "colorizer-outputs"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.glob("*/*"):
        try:
            if now - old.stat().st_mtime > OUTPUT_TTL_SECONDS:
                old.unlink()
                old.parent.rmdir()
        except OSError:
            pass  # another request is cleaning up, or the folder still holds a newer file
    target = folder / uuid.uuid4().hex
    target.mkdir()
    return target


def preview(image: Image.Image) -> Image.Image:
    image = image.copy()
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    return image


def user_message(error: Exception, name: str = "the file", path: str | None = None) -> str:
    """One sentence a person can act on (the server-side path replaced by words)."""
    detail = str(error).replace(repr(str(path)), "the file") if path else str(error)
    if isinstance(error, ImageTooLargeError):
        return f"{name} is too large: {detail}. Please upload a smaller image."
    if isinstance(error, InvalidImageError):
        return f"Could not read {name}: {detail}."
    if isinstance(error, FileNotFoundError):
        return f"{name} did not arrive; please upload it again."
    return f"Colorizing {name} failed ({type(error).__name__}). Please try another image."


def app_size(colorizer, size: int) -> tuple[int | None, str]:
    """The working-size slider applies to models that keep the photo's own lightness; an RGB model redraws it and
    draws at the photo's own size (Colorizer.rgb_size), which enlarging a small drawing would blur."""
    if colorizer.draws_own_lightness:
        return None, f"drawn at the photo's own size, short side up to {RGB_MAX_SHORT_SIDE}: an RGB model"
    return int(size), f"working size {int(size)}"


def colorize_file(path: str | None, model: str | None, size: int, saturation: float, pool: ModelPool) -> ColorizeResult:
    """Colorize one uploaded file. Raises ``gr.Error`` with a readable message for any bad input."""
    if not path:
        raise gr.Error("Please upload a photo first (or pick an example).", title="No photo")
    if not pool.names():
        raise gr.Error("No trained weights are installed in weights/.", title="No model")
    name = Path(path).name
    try:
        colorizer = pool.get(model)
        started = time.perf_counter()
        photo = load_photo(path, colorizer.max_pixels)
        network_size, size_note = app_size(colorizer, size)
        result = colorizer.colorize_photo(photo, size=network_size, saturation=float(saturation))
        seconds = time.perf_counter() - started
    except (InvalidImageError, FileNotFoundError, KeyError) as error:
        log.info("rejected %s: %s", name, error)
        message = error.args[0] if isinstance(error, KeyError) else user_message(error, name, path)
        raise gr.Error(message, title="Cannot colorize this file", print_exception=False) from None
    except Exception as error:  # never a stack trace in the browser; the log keeps it
        log.exception("colorizing %s failed", name)
        raise gr.Error(user_message(error, name), title="Something went wrong", print_exception=False) from None
    target = output_folder() / f"{Path(name).stem}_color.png"
    # labelled as machine-coloured (XMP); level 1: a 50 MP PNG in seconds instead of a minute
    colorizer.save(result, target, compress_level=1)
    before = Image.fromarray((photo.gray * 255 + 0.5).astype("uint8"), "L").convert("RGB")
    width, height = result.size
    info = (f"**{width} x {height}** pixels colorized in **{seconds:.2f} s** on **{colorizer.device}** "
            f"with **{colorizer.name}** ({size_note}, saturation {float(saturation):.2f}).")
    note = f"{name}: {first_frame_note(photo.frames)}." if photo.frames > 1 else ""
    if note:
        info += f"\n\n**Note**: {note}"
    return ColorizeResult(preview(before), preview(result.convert("RGB")), target, info, note)


def colorize_files(paths: list[str] | None, model: str | None, size: int, saturation: float,
                   pool: ModelPool) -> tuple[list[tuple[Image.Image, str]], Path | None, str]:
    """Colorize several files: (gallery items, zip of full-resolution PNGs, Markdown report). Bad files are listed,
    the good ones still colorized."""
    if not paths:
        raise gr.Error("Please choose one or more photos.", title="No photos")
    if len(paths) > MAX_BATCH:
        raise gr.Error(f"Please send at most {MAX_BATCH} photos at a time (got {len(paths)}).", title="Too many")
    gallery, written, problems, notes = [], [], [], []
    folder = output_folder()
    started = time.perf_counter()
    for path in paths:
        try:
            result = colorize_file(path, model, size, saturation, pool)
        except gr.Error as error:
            problems.append(f"- {Path(path).name}: {error.message}")
            continue
        gallery.append((result.after, Path(path).name))
        written.append(result.path)
        if result.note:
            notes.append(f"- {result.note}")
    archive = None
    if written:
        archive = folder / "colorized.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:  # PNGs are already compressed
            for file in written:
                bundle.write(file, file.name)
    report = f"Colorized **{len(written)} of {len(paths)}** photos in {time.perf_counter() - started:.1f} s."
    if problems:
        report += "\n\nNot colorized:\n" + "\n".join(problems)
    if notes:
        report += "\n\nNotes:\n" + "\n".join(notes)
    return gallery, archive, report


COMPARE_DEFAULT = ("balanced", "vivid", "deepcolor-unet", "organic-cgan")  # preselected where shipped
MAX_COMPARED = 8


def compare_models(path: str | None, models: list[str] | None, size: int, pool: ModelPool
                   ) -> tuple[list[tuple[Image.Image, str]], str]:
    """One photo by several models side by side: (gallery items captioned with model and time, Markdown). The
    photo is read once; a model that fails is named, the others still shown."""
    if not path:
        raise gr.Error("Please upload a photo first (or pick an example).", title="No photo")
    models = [m for m in (models or []) if m]
    if not models:
        raise gr.Error("Please tick at least one model to compare.", title="No model")
    if len(models) > MAX_COMPARED:
        raise gr.Error(f"Please compare at most {MAX_COMPARED} models at a time.", title="Too many")
    name = Path(path).name
    try:
        photo = load_photo(path, pool.get(models[0]).max_pixels)
    except (InvalidImageError, FileNotFoundError) as error:
        raise gr.Error(user_message(error, name, path), title="Cannot colorize this file",
                       print_exception=False) from None
    items = [(preview(Image.fromarray((photo.gray * 255 + 0.5).astype("uint8"), "L").convert("RGB")), "input")]
    rows, any_rgb = [], False
    for model in models:
        try:
            colorizer = pool.get(model)
            any_rgb |= colorizer.draws_own_lightness
            started = time.perf_counter()
            result = colorizer.colorize_photo(photo, size=app_size(colorizer, size)[0])
            seconds = time.perf_counter() - started
        except Exception as error:  # one model failing must not hide the others
            log.exception("comparing with %s failed", model)
            rows.append(f"| {model} | failed ({type(error).__name__}) |")
            continue
        items.append((preview(result.convert("RGB")), f"{model} · {seconds:.2f} s"))
        rows.append(f"| {model} | {seconds:.2f} s |")
    own_size = " (RGB models at the photo's own size)" if any_rgb else ""
    text = (f"**{name}** at working size {int(size)}{own_size} on {pool.get(models[0]).device}:\n\n"
            "| model | time |\n|---|---|\n" + "\n".join(rows))
    if photo.frames > 1:
        text += f"\n\n**Note**: {name}: {first_frame_note(photo.frames)}."
    return items, text


def model_choices(pool: ModelPool) -> list[tuple[str, str]]:
    """Labels name the group ("This project" or "Source papers"), the model and its one-line description."""
    return [(f"{pool.group(name)} · {name}: {pool.describe(name)}", name) for name in pool.names()]


def build_colorize_tab(pool: ModelPool, examples: list[Path]) -> None:
    """Lays out the tab inside the current ``gr.Blocks`` and wires its events."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            source = RawImage(label="Black-and-white photo", type="filepath", sources=["upload", "clipboard"],
                              height=360, elem_id="source-image")
            if examples:
                gr.Examples(examples=[[str(p)] for p in examples], inputs=[source], examples_per_page=14,
                            label="Examples: historical photos, and two colour ones to compare with the truth")
            model = gr.Dropdown(model_choices(pool), value=pool.default, label="Model", elem_id="model-picker",
                                info="This project's models first, then the five source papers' systems "
                                     "as trained here; each model's card is weights/<name>.md")
            with gr.Row():
                size = gr.Slider(128, 512, value=256, step=32, label="Working size (short side the network sees)")
                saturation = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Saturation")
            run = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
        with gr.Column(scale=3):
            slider = gr.ImageSlider(label="Before / after", type="pil", format="png", elem_id="result-slider",
                                    max_height=560)
            info = gr.Markdown(elem_id="result-info")
            download = gr.DownloadButton("Download full-resolution PNG", visible=False, elem_id="download-button")
    with gr.Accordion("Several photos at once", open=False):
        files = gr.File(file_count="multiple", label="Photos", type="filepath")
        run_many = gr.Button("Colorize all", variant="secondary")
        gallery = gr.Gallery(label="Results", columns=4, height=320)
        archive = gr.DownloadButton("Download all (zip)", visible=False)
        report = gr.Markdown()

    with gr.Accordion("Compare models on this photo", open=False):
        compared = gr.CheckboxGroup(pool.names(), value=[m for m in COMPARE_DEFAULT if m in pool.names()],
                                    label="Models", elem_id="compare-models")
        run_compare = gr.Button("Compare", variant="secondary", elem_id="compare-button")
        compare_gallery = gr.Gallery(label="Side by side (input first)", columns=5, height=300,
                                     elem_id="compare-gallery")
        compare_times = gr.Markdown(elem_id="compare-times")

    # The names and docstrings below are what API and MCP clients see (python -m demo --mcp)
    def colorize_photo(path, model_name, working_size, factor):
        """Colorizes a black-and-white photo at its full resolution.

        Args:
            path: the photo (any common image format)
            model_name: which model colorizes (python -m colorizer models lists them; "balanced" is the default)
            working_size: short side, in pixels, of the copy the network sees (128-512; 256 is usual; an RGB
                model draws at the photo's own size instead)
            factor: saturation of the predicted colours (1.0 as the model predicts them)
        Returns:
            the photo before and after, a line about the result, and the full-resolution PNG
        """
        result = colorize_file(path, model_name, working_size, factor, pool)
        return (result.before, result.after), result.info, gr.DownloadButton(value=str(result.path), visible=True)

    def colorize_photos(paths, model_name, working_size, factor):
        """Colorizes several black-and-white photos with one model.

        Args:
            paths: the photos
            model_name: which model colorizes ("balanced" is the default)
            working_size: short side, in pixels, of the copy the network sees (128-512; not for RGB models)
            factor: saturation of the predicted colours (1.0 as predicted)
        Returns:
            the colorized photos, a zip of them and a line per photo that could not be read
        """
        items, zip_path, text = colorize_files(paths, model_name, working_size, factor, pool)
        return items, gr.DownloadButton(value=str(zip_path) if zip_path else None, visible=zip_path is not None), text

    def compare_models_on_photo(path, names, working_size):
        """Colorizes one photo with several models, side by side, with each model's time.

        Args:
            path: the photo
            names: the models to compare
            working_size: short side, in pixels, of the copy the network sees (128-512; not for RGB models)
        Returns:
            the input and each model's result, and a table of times
        """
        return compare_models(path, names, working_size, pool)

    # one colorization at a time per CPU process: concurrent visitors queue instead of exhausting memory
    run.click(colorize_photo, [source, model, size, saturation], [slider, info, download], api_name="colorize",
              concurrency_id="colorize", concurrency_limit=1)
    run_compare.click(compare_models_on_photo, [source, compared, size], [compare_gallery, compare_times],
                      api_name="compare", concurrency_id="colorize", concurrency_limit=1)
    run_many.click(colorize_photos, [files, model, size, saturation], [gallery, archive, report],
                   api_name="colorize_many", concurrency_id="colorize", concurrency_limit=1)
