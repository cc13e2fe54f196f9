"""Protocol profiles: which ComfyUI version the fake imitates.

One engine (`ComfyCore` + `FakeComfy`), a small typed set of switches per ComfyUI version.
Every switch is something a recording of that version shows (tests/data/comfyui-traces/
for 0.3.64, tests/data/comfyui-traces-current/ for 0.33.0); docs/protocol.md says per
item which version behaves how. Clients branch on `/system_stats.system.comfyui_version`,
so the reported version and the behaviour always come from the same profile.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Profile:
    """The switches that differ between the imitated ComfyUI versions."""

    name: str  # the --comfyui-version value
    comfyui_version: str  # /system_stats system.comfyui_version
    frontend_version: str  # system.required_frontend_version (the pinned comfyui-frontend-package)
    templates_version: str
    os_name: str  # system.os: os.name ("posix") before 0.4, sys.platform ("linux") since
    package_versions: tuple[tuple[str, str], ...]  # system.comfy_package_versions; () = key absent
    deploy_environment: str | None  # system.deploy_environment; None = key absent
    #: A client `prompt_id` must be a canonical lowercase UUID (400 `invalid_prompt_id`
    #: after the queue number was taken); before, any value was used as `str(value)`.
    uuid_prompt_ids: bool
    #: Unknown / missing class_type → `missing_node_type` with `extra_info`; before, `invalid_prompt`.
    missing_node_type: bool
    #: `extra_data.create_time` (ms) appended at POST time (queue, history, jobs).
    create_time: bool
    #: `/queue` hides `auth_token_comfy_org` / `api_key_comfy_org` (history always does).
    queue_hides_secrets: bool
    #: The Jobs API: GET /api/jobs, /api/jobs/{id}, POST /api/jobs/{id}/cancel, /api/jobs/cancel.
    jobs_api: bool
    #: `Sec-Fetch-Site: cross-site` (exact, case-sensitive) → 403 empty, before any other check.
    sec_fetch_site_check: bool
    #: Cache-Control of `GET /`.
    index_cache_control: str
    #: `logs` entries carry a coloured level prefix (`[INFO]`, `[ERROR]`).
    log_levels: bool
    #: The order of a prompt's output nodes (queue item [4], hence which branch runs first).
    #: ComfyUI builds it from a Python set, so it is the recording process's hash order:
    #: prompt order in every 0.3.64 recording, the reverse in every 0.33.0 one.
    reverse_output_order: bool
    #: `/object_info` per-class keys added since 0.11 (`is_input_list`, `has_intermediate_output`,
    #: `search_aliases`).
    object_info_v3_keys: bool
    #: Server feature flags beyond `supports_preview_metadata` / `max_upload_size`, in order
    #: (`max_upload_size` is inserted at `upload_size_position`).
    extra_features: tuple[tuple[str, Any], ...]
    upload_size_position: int

    def features(self, max_upload_size: int) -> dict[str, Any]:
        """The `feature_flags` reply and `GET /features` body, in ComfyUI's key order."""
        items: list[tuple[str, Any]] = [("supports_preview_metadata", True), *self.extra_features]
        items.insert(self.upload_size_position, ("max_upload_size", max_upload_size))
        return {key: _fresh(value) for key, value in items}


def _fresh(value: Any) -> Any:
    """A copy of nested dicts, so a caller can never change the profile's constants."""
    return {k: _fresh(v) for k, v in value.items()} if isinstance(value, dict) else value


V0_3_64 = Profile(
    name="0.3.64",
    comfyui_version="0.3.64",
    frontend_version="1.27.10",
    templates_version="0.1.95",
    os_name="posix",
    package_versions=(),
    deploy_environment=None,
    uuid_prompt_ids=False,
    missing_node_type=False,
    create_time=False,
    queue_hides_secrets=False,
    jobs_api=False,
    sec_fetch_site_check=False,
    index_cache_control="no-cache",
    log_levels=False,
    reverse_output_order=False,
    object_info_v3_keys=False,
    extra_features=(),
    upload_size_position=1,
)

V0_33 = Profile(
    name="0.33",
    comfyui_version="0.33.0",
    frontend_version="1.48.7",
    templates_version="0.11.41",
    os_name="linux",
    package_versions=(
        ("comfyui-frontend-package", "1.48.7"),
        ("comfyui-workflow-templates", "0.11.41"),
        ("comfyui-embedded-docs", "0.5.9"),
        ("comfy-kitchen", "0.2.31"),
        ("comfy-aimdo", "0.4.13"),
    ),
    deploy_environment="local-git",
    uuid_prompt_ids=True,
    missing_node_type=True,
    create_time=True,
    queue_hides_secrets=True,
    jobs_api=True,
    sec_fetch_site_check=True,
    index_cache_control="no-store, must-revalidate",
    log_levels=True,
    reverse_output_order=True,
    object_info_v3_keys=True,
    extra_features=(
        ("supports_model_type_tags", True),
        ("extension", {"manager": {"supports_v4": True}}),
        ("node_replacements", True),
        ("assets", False),
    ),
    upload_size_position=2,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (V0_3_64, V0_33)}
#: The newest profile: the default of `serve`, `run`, `bench`, pytest and new scenarios.
DEFAULT_VERSION = V0_33.name
VERSION_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(version: str | None) -> Profile:
    """The profile for a `--comfyui-version` value (None = the default); `ValueError` names the choices."""
    if version is None:
        return PROFILES[DEFAULT_VERSION]
    profile = PROFILES.get(version) or PROFILES.get(_alias(version))
    if profile is None:
        raise ValueError(f"unknown ComfyUI version {version!r}: expected one of {', '.join(VERSION_NAMES)}")
    return profile


def _alias(version: str) -> str:
    """`0.33.0` names the `0.33` profile (the version string /system_stats reports)."""
    for profile in PROFILES.values():
        if version == profile.comfyui_version:
            return profile.name
    return version
