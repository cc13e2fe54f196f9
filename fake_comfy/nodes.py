"""The fake's node classes: ComfyUI's stock no-model nodes plus its own Chaos* test nodes.

Each class has ComfyUI's `/object_info` entry (copied from the recorded server where the
traces show it) and a pure `run` function turning resolved inputs into a `NodePlan`:
what the node outputs, how long it takes at time_scale 1, its progress-bar steps,
its UI output and the files to write, or the failure it raises.
"""
from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from comfy_chaos.fake_comfy.png import solid_png


@dataclass(frozen=True, slots=True)
class Image:
    """An IMAGE value: a batch of solid-colour images."""

    width: int
    height: int
    batch: int
    color: int

    def __repr__(self) -> str:
        return f"tensor(<{self.batch}x{self.height}x{self.width}x3 solid #{self.color:06x}>)"


@dataclass(frozen=True, slots=True)
class Latent:
    width: int
    height: int
    batch: int

    def __repr__(self) -> str:
        return f"{{'samples': tensor(<{self.batch}x4x{self.height // 8}x{self.width // 8}>)}}"


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a node writes: `folder` is "output", "temp" or "input"."""

    folder: str
    subfolder: str
    filename: str
    data: bytes

    def ui_entry(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.folder}


@dataclass(frozen=True, slots=True)
class ProgressStep:
    value: int
    max: int
    preview: bytes | None = None  # PNG bytes of a preview image, if the step carries one


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """What a failing node raises (becomes the `execution_error` payload)."""

    exception_type: str
    exception_message: str
    traceback: tuple[str, ...] = ()


@dataclass(slots=True)
class NodePlan:
    outputs: tuple[Any, ...] = ()
    duration: float = 0.0  # seconds at time_scale 1
    steps: list[ProgressStep] = field(default_factory=list)
    ui: dict[str, Any] | None = None
    files: list[OutputFile] = field(default_factory=list)
    text: str | None = None  # send_progress_text → binary event 3, broadcast
    failure: NodeFailure | None = None


class SaveContext(Protocol):
    """What a node needs from the server to name its files."""

    output_dir: str
    temp_prefix: str

    def next_counter(self, folder: str, subfolder: str, name: str, count: int) -> int: ...


@dataclass(frozen=True, slots=True)
class NodeClass:
    name: str
    info: dict[str, Any]  # the /object_info entry
    run: Callable[[dict[str, Any], SaveContext, dict[str, Any]], NodePlan]
    always_changed: bool = False  # IS_CHANGED returns a new value each time: never cached

    @property
    def output_node(self) -> bool:
        return bool(self.info["output_node"])

    @property
    def return_types(self) -> list[str]:
        return list(self.info["output"])

    def input_spec(self, name: str) -> tuple[str, list[Any]] | None:
        """(category, [type, extra]) of an input as validation sees it, or None."""
        for category in ("required", "optional"):
            spec = self.info["input"].get(category, {}).get(name)
            if spec is not None:
                extra = spec[1] if len(spec) > 1 else {}
                return category, [spec[0], extra]
        return None

    def hidden_inputs(self) -> list[str]:
        return list(self.info["input"].get("hidden", {}))


def _int(default: int, lo: int, hi: int, step: int | None = 1, **extra: Any) -> list[Any]:
    spec: dict[str, Any] = {"default": default, "min": lo, "max": hi}
    if step is not None:
        spec["step"] = step
    spec.update(extra)
    return ["INT", spec]


def _info(
    name: str,
    required: dict[str, list[Any]],
    output: list[str],
    *,
    display_name: str | None,
    category: str,
    python_module: str = "nodes",
    output_node: bool = False,
    optional: dict[str, list[Any]] | None = None,
    hidden: dict[str, str] | None = None,
    output_name: list[str] | None = None,
    description: str = "",
    v3: bool = False,
) -> dict[str, Any]:
    inputs: dict[str, Any] = {"required": required}
    order: dict[str, list[str]] = {"required": list(required)}
    if optional:
        inputs["optional"] = optional
        order["optional"] = list(optional)
    if hidden:
        inputs["hidden"] = hidden
        order["hidden"] = list(hidden)
    info: dict[str, Any] = {
        "input": inputs,
        "input_order": order,
        "output": output,
        "output_is_list": [False] * len(output),
        "output_name": output_name or list(output),
    }
    if v3:
        info["output_tooltips"] = [None] * len(output)
    info.update(
        {
            "name": name,
            "display_name": display_name,
            "description": description,
            "python_module": python_module,
            "category": category,
            "output_node": output_node,
        }
    )
    if v3:
        info.update({"deprecated": False, "experimental": False, "api_node": False})
    return info


#: Display names that changed by 0.33.0 (as recorded; the other classes kept theirs).
CURRENT_DISPLAY_NAMES = {"EmptyImage": "Empty Image", "SaveImageWebsocket": "Save Image (Websocket)", "ImageBlur": "Blur Image"}


def current_info(info: dict[str, Any]) -> dict[str, Any]:
    """An `/object_info` entry in ComfyUI 0.33's shape (keys added in 0.11-0.19, in the
    recorded order); `info` is the 0.3.64 entry. V3 nodes (those with `deprecated`) carry more."""
    v3 = "deprecated" in info
    after: dict[str, dict[str, Any]] = {"input_order": {"is_input_list": False}}
    if v3:
        after |= {
            "output_tooltips": {"output_matchtypes": None},
            "experimental": {"dev_only": False},
            "api_node": {
                "price_badge": None, "search_aliases": None, "essentials_category": None, "has_intermediate_output": False,
            },
        }  # fmt: skip
    else:
        after["output_node"] = {"has_intermediate_output": False, "search_aliases": []}
    out: dict[str, Any] = {}
    for key, value in info.items():
        out[key] = value
        out |= after.get(key, {})
    out["display_name"] = CURRENT_DISPLAY_NAMES.get(info["name"], info["display_name"])
    return out


_PNGINFO_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
_MEGAPIXEL = 1024 * 1024


def _pixels(image: Image) -> int:
    return image.width * image.height * image.batch


def _image_files(ctx: SaveContext, folder: str, prefix: str, image: Image) -> list[OutputFile]:
    subfolder, name = posixpath.split(prefix)
    first = ctx.next_counter(folder, subfolder, name, image.batch)
    data = solid_png(image.width, image.height, image.color)
    return [
        OutputFile(folder, subfolder, f"{name}_{first + i:05}_.png", data) for i in range(image.batch)
    ]


def _save_path(ctx: SaveContext, prefix: str, function: str) -> tuple[str, str] | NodeFailure:
    """ComfyUI's `folder_paths.get_save_image_path`: (subfolder, name) of a filename_prefix,
    or the run-time failure for a prefix that escapes the output folder (`../x`, `/abs/x`).

    Every node that writes to the output folder goes through here, as in ComfyUI (SaveImage,
    SaveLatent): the prefix is normalised first, so `a/../../x` is refused and `a/../x` is `x`."""
    normalized = posixpath.normpath(prefix)
    subfolder, name = posixpath.dirname(normalized), posixpath.basename(normalized)
    full = posixpath.abspath(posixpath.join(ctx.output_dir, subfolder))
    common = posixpath.commonpath([ctx.output_dir, full])
    if "\0" in prefix:  # ComfyUI's os.listdir raises here
        return NodeFailure(
            "ValueError",
            "listdir: embedded null byte\n",
            (f'  File "fake_comfy/nodes.py", line 1, in {function}\n',
             '  File "fake_comfy/folder_paths.py", line 1, in get_save_image_path\n'),
        )
    if common == ctx.output_dir:
        return subfolder, name
    message = (
        "**** ERROR: Saving image outside the output folder is not allowed."
        f"\n full_output_folder: {full}\n         output_dir: {ctx.output_dir}"
        f"\n         commonpath: {common}\n"
    )
    return NodeFailure(
        "Exception",
        message,
        (
            f'  File "fake_comfy/nodes.py", line 1, in {function}\n'
            "    full_output_folder, filename, counter, subfolder, filename_prefix = "
            "folder_paths.get_save_image_path(filename_prefix, self.output_dir)\n",
            '  File "fake_comfy/folder_paths.py", line 1, in get_save_image_path\n'
            "    raise Exception(err)\n",
        ),
    )


def _empty_image(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image = Image(inputs["width"], inputs["height"], inputs["batch_size"], inputs["color"] & 0xFFFFFF)
    return NodePlan((image,), duration=0.01)


def _image_invert(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image: Image = inputs["image"]
    out = Image(image.width, image.height, image.batch, image.color ^ 0xFFFFFF)
    return NodePlan((out,), duration=0.01)


def _image_blur(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image: Image = inputs["image"]
    return NodePlan((image,), duration=0.5 * _pixels(image) / _MEGAPIXEL)


def _preview_image(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image: Image = inputs["images"]
    files = _image_files(ctx, "temp", f"ComfyUI{ctx.temp_prefix}", image)
    return NodePlan((), duration=0.01, ui={"images": [f.ui_entry() for f in files]}, files=files)


def _save_image(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image: Image = inputs["images"]
    where = _save_path(ctx, inputs["filename_prefix"], "save_images")
    if isinstance(where, NodeFailure):
        return NodePlan((), duration=0.005, failure=where)
    files = _image_files(ctx, "output", posixpath.join(*where), image)
    return NodePlan((), duration=0.02, ui={"images": [f.ui_entry() for f in files]}, files=files)


def _save_image_websocket(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image: Image = inputs["images"]
    png = solid_png(image.width, image.height, image.color)
    steps = [ProgressStep(i, image.batch, png) for i in range(image.batch)]
    return NodePlan((), duration=0.005 * image.batch, steps=steps)


def _get_image_size(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image: Image = inputs["image"]
    text = f"width: {image.width}, height: {image.height}\n batch size: {image.batch}"
    return NodePlan((image.width, image.height, image.batch), duration=0.005, text=text)


def _empty_latent(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    return NodePlan((Latent(inputs["width"], inputs["height"], inputs["batch_size"]),), duration=0.005)


def _latent_upscale(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    latent: Latent = inputs["samples"]
    width = inputs["width"] or latent.width
    height = inputs["height"] or latent.height
    return NodePlan((Latent(width, height, latent.batch),), duration=0.01)


def _save_latent(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    latent: Latent = inputs["samples"]
    where = _save_path(ctx, inputs["filename_prefix"], "save")
    if isinstance(where, NodeFailure):
        return NodePlan((), duration=0.005, failure=where)
    subfolder, name = where
    counter = ctx.next_counter("output", subfolder, name, 1)
    data = f"fake latent {latent.batch}x4x{latent.height // 8}x{latent.width // 8}\n".encode()
    file = OutputFile("output", subfolder, f"{name}_{counter:05}_.latent", data)
    return NodePlan((), duration=0.01, ui={"latents": [file.ui_entry()]}, files=[file])


_DEFAULT_IMAGE = Image(64, 64, 1, 0x808080)


def _chaos_sleep(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    return NodePlan((inputs.get("images", _DEFAULT_IMAGE),), duration=float(inputs["seconds"]))


def _chaos_progress(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    image: Image = inputs.get("images", _DEFAULT_IMAGE)
    total = int(inputs["steps"])
    preview = solid_png(min(image.width, 64), min(image.height, 64), image.color) if inputs.get("previews") else None
    steps = [ProgressStep(i + 1, total, preview) for i in range(total)]
    return NodePlan((image,), duration=float(inputs["seconds"]), steps=steps)


def _chaos_fail(inputs: dict[str, Any], ctx: SaveContext, hidden: dict[str, Any]) -> NodePlan:
    failure = NodeFailure(
        "RuntimeError",
        f"{inputs['message']}\n",
        ('  File "fake_comfy/nodes.py", line 1, in chaos_fail\n    raise RuntimeError(message)\n',),
    )
    return NodePlan((), duration=float(inputs.get("seconds", 0.0)), failure=failure)


_IMAGE_IN = ["IMAGE", {}]
_SEED = {"seed": _int(0, 0, 2**53, None, tooltip="Changes the cache key only.")}


def _chaos_info(name: str, required: dict[str, list[Any]], optional: dict[str, list[Any]], description: str) -> dict[str, Any]:
    return _info(
        name,
        required,
        ["IMAGE"],
        display_name=name,
        category="chaos",
        python_module="fake_comfy.nodes",
        optional={"images": _IMAGE_IN, **optional, **_SEED},
        description=description,
    )


_SECONDS = ["FLOAT", {"default": 1.0, "min": 0.0, "max": 3600.0, "step": 0.01}]

NODE_CLASSES: dict[str, NodeClass] = {
    c.name: c
    for c in [
        NodeClass(
            "EmptyImage",
            _info(
                "EmptyImage",
                {
                    "width": _int(512, 1, 16384),
                    "height": _int(512, 1, 16384),
                    "batch_size": _int(1, 1, 4096, None),
                    "color": _int(0, 0, 16777215, 1, display="color"),
                },
                ["IMAGE"],
                display_name="EmptyImage",
                category="image",
            ),
            _empty_image,
        ),
        NodeClass(
            "ImageInvert",
            _info("ImageInvert", {"image": ["IMAGE"]}, ["IMAGE"], display_name="Invert Image", category="image"),
            _image_invert,
        ),
        NodeClass(
            "ImageBlur",
            _info(
                "ImageBlur",
                {
                    "image": ["IMAGE", {}],
                    "blur_radius": _int(1, 1, 31),
                    "sigma": ["FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}],
                },
                ["IMAGE"],
                display_name=None,
                category="image/postprocessing",
                python_module="comfy_extras.nodes_post_processing",
                v3=True,
            ),
            _image_blur,
        ),
        NodeClass(
            "PreviewImage",
            _info(
                "PreviewImage",
                {"images": ["IMAGE", {"tooltip": "The images to preview."}]},
                [],
                display_name="Preview Image",
                category="image",
                output_node=True,
                hidden=_PNGINFO_HIDDEN,
                description="Saves the input images to your ComfyUI output directory.",
            ),
            _preview_image,
        ),
        NodeClass(
            "SaveImage",
            _info(
                "SaveImage",
                {
                    "images": ["IMAGE", {"tooltip": "The images to save."}],
                    "filename_prefix": [
                        "STRING",
                        {
                            "default": "ComfyUI",
                            "tooltip": "The prefix for the file to save. This may include formatting "
                            "information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% "
                            "to include values from nodes.",
                        },
                    ],
                },
                [],
                display_name="Save Image",
                category="image",
                output_node=True,
                hidden=_PNGINFO_HIDDEN,
                description="Saves the input images to your ComfyUI output directory.",
            ),
            _save_image,
        ),
        NodeClass(
            "SaveImageWebsocket",
            _info(
                "SaveImageWebsocket",
                {"images": ["IMAGE"]},
                [],
                display_name="SaveImageWebsocket",
                category="api/image",
                python_module="custom_nodes.websocket_image_save",
                output_node=True,
            ),
            _save_image_websocket,
            always_changed=True,
        ),
        NodeClass(
            "GetImageSize",
            _info(
                "GetImageSize",
                {"image": ["IMAGE", {}]},
                ["INT", "INT", "INT"],
                output_name=["width", "height", "batch_size"],
                display_name="Get Image Size",
                category="image",
                python_module="comfy_extras.nodes_images",
                hidden={"unique_id": "UNIQUE_ID"},
                description="Returns width and height of the image, and passes it through unchanged.",
                v3=True,
            ),
            _get_image_size,
        ),
        NodeClass(
            "EmptyLatentImage",
            _info(
                "EmptyLatentImage",
                {
                    "width": _int(512, 16, 16384, 8, tooltip="The width of the latent images in pixels."),
                    "height": _int(512, 16, 16384, 8, tooltip="The height of the latent images in pixels."),
                    "batch_size": _int(1, 1, 4096, None, tooltip="The number of latent images in the batch."),
                },
                ["LATENT"],
                display_name="Empty Latent Image",
                category="latent",
                description="Create a new batch of empty latent images to be denoised via sampling.",
            ),
            _empty_latent,
        ),
        NodeClass(
            "LatentUpscale",
            _info(
                "LatentUpscale",
                {
                    "samples": ["LATENT"],
                    "upscale_method": [["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]],
                    "width": _int(512, 0, 16384, 8),
                    "height": _int(512, 0, 16384, 8),
                    "crop": [["disabled", "center"]],
                },
                ["LATENT"],
                display_name="Upscale Latent",
                category="latent",
            ),
            _latent_upscale,
        ),
        NodeClass(
            "SaveLatent",
            _info(
                "SaveLatent",
                {"samples": ["LATENT"], "filename_prefix": ["STRING", {"default": "latents/ComfyUI"}]},
                [],
                display_name="SaveLatent",
                category="_for_testing",
                python_module="comfy_extras.nodes_latent",
                output_node=True,
                hidden=_PNGINFO_HIDDEN,
            ),
            _save_latent,
        ),
        NodeClass(
            "ChaosSleep",
            _chaos_info("ChaosSleep", {"seconds": _SECONDS}, {}, "Passes images through after `seconds` (scaled)."),
            _chaos_sleep,
        ),
        NodeClass(
            "ChaosProgress",
            _chaos_info(
                "ChaosProgress",
                {"steps": _int(20, 1, 100000), "seconds": _SECONDS},
                {"previews": ["BOOLEAN", {"default": False}]},
                "Reports `steps` progress updates spread over `seconds`; optional previews.",
            ),
            _chaos_progress,
        ),
        NodeClass(
            "ChaosFail",
            _info(
                "ChaosFail",
                {"message": ["STRING", {"default": "ChaosFail: failing on purpose"}]},
                ["IMAGE"],
                display_name="ChaosFail",
                category="chaos",
                python_module="fake_comfy.nodes",
                optional={
                    "images": _IMAGE_IN,
                    "seconds": ["FLOAT", {"default": 0.0, "min": 0.0, "max": 3600.0, "step": 0.01}],
                    **_SEED,
                },
                description="Raises RuntimeError(message) at run time after `seconds`.",
            ),
            _chaos_fail,
        ),
    ]
}
