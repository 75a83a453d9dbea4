"""MLflow's model registry on an mltrail store: MLflow's registry calls on
:class:`mltrail.registry.models.ModelRegistry`, answered in MLflow's entities.

Both front doors call :class:`RegistryTranslation`: the plugin (MLflow's
``mlflow.model_registry_store`` entry point, scheme ``mltrail``: :class:`MltrailRegistryStore`)
and the server's MLflow REST API (:func:`registry_translation`). What MLflow registers is what
``mltrail models``, the dashboard and ``store.load_model("models:/name@alias")`` see.

How MLflow's registry maps onto mltrail's:

- **Versions** are numbered 1, 2, 3 per model in the order they were registered, by MLflow
  as by mltrail (which numbers them by event order, and never drops one: a deleted version
  keeps its number, as in MLflow).
- A version MLflow registers is a model *folder*: its ``source`` (``models:/m-<ID>``, a
  logged model; ``runs:/<run>/<path>``; the run's artifact URI; ``models:/<name>/<version>``
  for a copy) must name files in this store; its files are recorded by sha256, and the one
  mltrail loads is its pickle (``model.pkl``), else its ``MLmodel``. A source elsewhere (an
  S3 bucket, a local folder) is refused: mltrail's versions are files it holds.
- **Stages** (MLflow 2's, deprecated in MLflow) are the version tag ``mlflow.current_stage``,
  as ``mltrail import mlflow`` keeps them; a version mltrail archived reads ``Archived``.
- **Deleting a version** archives it marked deleted: gone for MLflow's reads, its aliases
  deleted, kept in the model's history. **Deleting or renaming a model** is refused: mltrail
  keeps a model's versions and alias history under its name.
- Webhooks and prompts are not kept: MLflow's ``NotImplementedError``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

from mlflow.entities.model_registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from mlflow.entities.model_registry.model_version_stages import (
    ALL_STAGES,
    DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS,
    STAGE_ARCHIVED,
    STAGE_NONE,
    get_canonical_stage,
)
from mlflow.exceptions import MlflowException
from mlflow.prompt.registry_utils import add_prompt_filter_string, handle_resource_already_exist_error, has_prompt_tag
from mlflow.protos import databricks_pb2
from mlflow.store.artifact.utils.models import _parse_model_uri
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
)
from mlflow.store.model_registry.abstract_store import AbstractStore
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils
from mlflow.utils import validation as _mlflow_validation
from mlflow.utils.validation import (
    _REGISTERED_MODEL_ALIAS_LATEST,
    _validate_model_name,
    _validate_model_version,
    _validate_model_version_tag,
    _validate_registered_model_tag,
    _validate_tag_name,
)

from ..errors import StoreCorruptError

# MLflow 3.18 renamed its alias checks (the same checks, the same messages); before: _model_
_validate_alias_name = getattr(_mlflow_validation, "_validate_alias_name", None) or getattr(
    _mlflow_validation, "_validate_model_alias_name")
_validate_alias_name_reserved = getattr(_mlflow_validation, "_validate_alias_name_reserved", None) or getattr(
    _mlflow_validation, "_validate_model_alias_name_reserved")
from ..registry import models as reg
from ..storage.logged_model_events import ModelFile
from ..storage.registry_events import MODEL_NAME
from .common import ARTIFACTS_SCHEME, MODELS_PATH, mlflow_errors
from .plugin import store_root, translation_for

if TYPE_CHECKING:  # (MLflow's import loads this module through its entry points, maybe while
    # the translation is itself being imported: see .common)
    from .translate import Translation

STAGE_TAG = "mlflow.current_stage"  # MLflow 2's stage of a version (as `mltrail import mlflow` keeps it)
_PROXY = "/api/2.0/mlflow-artifacts/artifacts/"  # MLflow's artifact proxy, in an http(s) source
_DELETED = "deleted through MLflow's API"
_NOT_KEPT = "mltrail's registry keeps models, not prompts"


@dataclass(frozen=True)
class Source:
    """The files an MLflow version's source names in the store: a folder of a run's
    artifacts (``folder``), or a logged model's files (``model_id``)."""

    run_id: str
    files: list[ModelFile]
    folder: str = ""
    model_id: str | None = None
    copied_from: str | None = None  # the registered model whose version's files these are


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _model_missing(name: str) -> MlflowException:
    return MlflowException(f"Registered Model with name={name} not found", databricks_pb2.RESOURCE_DOES_NOT_EXIST)


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, databricks_pb2.INVALID_PARAMETER_VALUE)


def _stage(version: reg.ModelVersion) -> str:
    """MLflow 2's stage of a version: its tag, else ``Archived`` when mltrail archived it."""
    return version.tags.get(STAGE_TAG) or (STAGE_ARCHIVED if version.archived else STAGE_NONE)


def _run_folder_of(version: reg.ModelVersion) -> str:
    """The folder of its run's artifacts a version's files are (its main file's path there,
    less that file's path inside the folder)."""
    main = reg.main_file([f.path for f in version.files])
    return (version.artifact or "")[:-len(main)].rstrip("/")


def _without_files(version: reg.ModelVersion) -> MlflowException:
    """MLflow's answer for a version imported from MLflow without its files, saying why."""
    return MlflowException(f"Model Version (name={version.model}, version={version.number}) was imported from "
                           f"MLflow without its files: {version.missing}", databricks_pb2.RESOURCE_DOES_NOT_EXIST)


def _page_bounds(max_results: Any, threshold: int) -> None:
    """MLflow's bounds of a page of models or versions, with its messages."""
    if not isinstance(max_results, int) or max_results < 1:
        raise _invalid(f"Invalid value for max_results. It must be a positive integer, but got {max_results}")
    if max_results > threshold:
        raise _invalid("Invalid value for request parameter max_results. It must be at most "
                       f"{threshold}, but got value {max_results}")


def _page(found: list[Any], page_token: str | None, max_results: int) -> PagedList[Any]:
    start = SearchUtils.parse_start_offset_from_page_token(page_token)
    end = start + max_results
    token = SearchUtils.create_page_token(end) if end < len(found) else None
    return PagedList(found[start:end], token.decode() if isinstance(token, bytes) else token)


class RegistryTranslation(AbstractStore):
    """MLflow's registry store on one mltrail store (through its :class:`.translate.Translation`,
    which also answers the runs and logged models a source names).

    The server's REST API passes ``by`` (the caller) to the calls that write and ``visible``
    (which models the caller may read) to the searches; MLflow's client passes neither."""

    def __init__(self, translation: Translation) -> None:
        super().__init__()
        self.translation = translation
        self.registry = translation.store.registry

    # -- MLflow's entities ---------------------------------------------------------------

    def _model(self, name: str) -> reg.RegisteredModel:
        """Model ``name``; MLflow's not-found for a name the registry does not hold (one
        mltrail could not hold either included)."""
        _validate_model_name(name)
        if not MODEL_NAME.fullmatch(name) or not self.registry.exists(name):
            raise _model_missing(name)
        with mlflow_errors():
            return self.registry.model(name)

    def _version(self, name: str, version: Any) -> reg.ModelVersion:
        number = _validate_model_version(version)
        found = next((v for v in self._model(name).versions if v.number == number and not v.deleted), None)
        if found is None:
            raise MlflowException(f"Model Version (name={name}, version={number}) not found",
                                  databricks_pb2.RESOURCE_DOES_NOT_EXIST)
        return found

    def model_entity(self, model: reg.RegisteredModel) -> RegisteredModel:
        return RegisteredModel(
            name=model.name, creation_timestamp=_ms(model.created), last_updated_timestamp=_ms(model.updated),
            description=model.description, latest_versions=self._latest(model, None),
            tags=[RegisteredModelTag(k, v) for k, v in model.tags.items()],
            aliases=[RegisteredModelAlias(alias, number) for alias, number in model.aliases.items()])

    def version_entity(self, version: reg.ModelVersion) -> ModelVersion:
        return ModelVersion(
            name=version.model, version=version.number,  # type: ignore[arg-type]  # an int, as MLflow's sqlite store gives it
            creation_timestamp=_ms(version.created),
            last_updated_timestamp=_ms(version.updated), description=version.description, user_id=version.by,
            current_stage=_stage(version), source=version.source or f"runs:/{version.run}/{version.artifact}",
            run_id=version.run, tags=[ModelVersionTag(k, v) for k, v in version.tags.items() if k != STAGE_TAG],
            aliases=list(version.aliases), model_id=version.model_id)

    def _latest(self, model: reg.RegisteredModel, stages: Sequence[str] | None) -> list[ModelVersion]:
        """The newest version of each stage asked for (all: None or empty), as MLflow's stores answer."""
        wanted = [get_canonical_stage(s) for s in (stages or ALL_STAGES)]
        latest: dict[str, ModelVersion] = {}
        for version in model.versions:
            if not version.deleted and _stage(version) in wanted:
                latest[_stage(version)] = self.version_entity(version)  # (oldest first: the last is the newest)
        return [latest[stage] for stage in dict.fromkeys(wanted) if stage in latest]

    # -- registered models ---------------------------------------------------------------

    def create_registered_model(self, name: str, tags: Sequence[RegisteredModelTag] | None = None,
                                description: str | None = None, deployment_job_id: str | None = None, *,
                                by: str | None = None) -> RegisteredModel:
        _validate_model_name(name)
        if has_prompt_tag(list(tags) if tags else None):
            raise NotImplementedError(_NOT_KEPT)
        for tag in tags or []:
            _validate_registered_model_tag(tag.key, tag.value)
        if MODEL_NAME.fullmatch(name) and self.registry.exists(name):
            handle_resource_already_exist_error(name, False, False)
        with mlflow_errors():
            self.registry.create(name, description or None, {t.key: str(t.value) for t in tags or []}, by=by)
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.model_entity(self._model(name))

    def update_registered_model(self, name: str, description: str | None, deployment_job_id: str | None = None, *,
                                by: str | None = None) -> RegisteredModel:
        self._model(name)
        with mlflow_errors():
            self.registry.describe(name, description, by=by)
        return self.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        self._model(name)
        raise _invalid(f"mltrail keeps a model's versions and alias history under its name: {name!r} cannot be "
                       f"renamed to {new_name!r} (create {new_name!r} and register the versions there)")

    def delete_registered_model(self, name: str) -> None:
        self._model(name)
        raise MlflowException(f"mltrail keeps a registered model's history: {name!r} cannot be deleted; delete "
                              "its versions instead (they are archived, and gone for MLflow's clients)",
                              databricks_pb2.INVALID_PARAMETER_VALUE)  # (a 500 would be retried for minutes)

    def _models(self, visible: Callable[[str], bool] | None) -> list[reg.RegisteredModel]:
        found = []
        for name in self.registry.names():
            if visible is not None and not visible(name):
                continue
            try:
                found.append(self.registry.model(name))
            except StoreCorruptError:  # one unreadable model never hides the others (list() warns)
                continue
        return found

    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
                                 order_by: Sequence[str] | None = None, page_token: str | None = None, *,
                                 visible: Callable[[str], bool] | None = None) -> PagedList[RegisteredModel]:
        """MLflow's search, its own filter grammar and ordering, in memory (as its file store)."""
        _page_bounds(max_results, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD)
        found = [self.model_entity(m) for m in self._models(visible)]
        found = SearchModelUtils.filter(found, add_prompt_filter_string(filter_string, is_prompt=False))
        return _page(SearchModelUtils.sort(found, order_by), page_token, max_results)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        return self._latest(self._model(name), stages)

    def set_registered_model_tag(self, name: str, tag: RegisteredModelTag, *, by: str | None = None) -> None:
        _validate_registered_model_tag(tag.key, tag.value)
        self._model(name)
        with mlflow_errors():
            self.registry.set_tag(name, tag.key, "" if tag.value is None else str(tag.value), by=by)

    def delete_registered_model_tag(self, name: str, key: str, *, by: str | None = None) -> None:
        _validate_tag_name(key)
        if key in self._model(name).tags:  # MLflow's stores delete a tag that is not there silently
            with mlflow_errors():
                self.registry.delete_tag(name, key, by=by)

    # -- model versions ------------------------------------------------------------------

    def source_files(self, source: str, run_id: str | None = None, model_id: str | None = None) -> Source:
        """The files in this store a version's ``source`` names (a logged model's, when
        ``model_id`` is given), or MLflow's INVALID_PARAMETER_VALUE saying what sources are taken."""
        parsed = urlparse(source) if isinstance(source, str) else None
        if parsed is None or not source:
            raise _invalid(f"a model version's source is a URI, not {source!r}")
        if model_id is None and parsed.scheme == "models":
            target = _parse_model_uri(source)
            if target.model_id is None:
                return self._copied(target.name, target.version, target.alias, run_id)
            model_id = target.model_id
        if model_id is not None:
            return self._logged_model(model_id, run_id)
        if parsed.scheme == "runs":
            run, _, path = source.removeprefix("runs:/").partition("/")
            return self._run_folder(run, path)
        if parsed.scheme == ARTIFACTS_SCHEME:
            roots = parse_qs(parsed.query).get("root")
            if not roots or Path(roots[0]).resolve() != self.translation.store.root.resolve():
                raise _invalid(f"{source!r} names another store's files: register a model from this one")
            parts = [p for p in parsed.path.split("/") if p]
            if parts[:1] == [MODELS_PATH] and len(parts) > 1:
                return self._logged_model(parts[1], run_id)
            return self._run_folder(parts[0] if parts else "", "/".join(parts[1:]))
        if parsed.scheme == "mlflow-artifacts":
            run, _, path = parsed.path.strip("/").partition("/")
            return self._run_folder(unquote(run), unquote(path))
        if parsed.scheme in ("http", "https") and _PROXY in parsed.path:
            run, _, path = parsed.path.split(_PROXY, 1)[1].partition("/")
            return self._run_folder(unquote(run), unquote(path))
        raise _invalid(f"mltrail registers versions whose files are in its store: {source!r} is elsewhere. Use "
                       "models:/<logged model ID>, runs:/<run ID>/<path>, or the run's artifact URI")

    def _run_folder(self, run_id: str, path: str) -> Source:
        """The run's artifacts under ``path``; else, as MLflow 3 reads ``runs:/<run>/<name>``,
        the model named ``path`` the run logged (the one logged at its largest step)."""
        try:
            with mlflow_errors():
                return Source(run_id, self.registry.run_folder(run_id, path), folder=path.strip("/"))
        except MlflowException as missing:
            outputs = self.translation.store.tracking.logged_models.outputs_of_run(run_id)
            named = [r for r in self.translation.store.tracking.logged_models.records()
                     if r.model_id in outputs and r.name == path.strip("/")]
            if not named:
                raise missing from None
            return self._logged_model(max(named, key=lambda r: outputs[r.model_id]).model_id, run_id)

    def _logged_model(self, model_id: str, run_id: str | None) -> Source:
        with mlflow_errors():
            record = self.translation.store.tracking.logged_models.get(model_id)
        run = run_id or record.source_run_id
        if not run:
            raise _invalid(f"logged model {model_id} has no source run: mltrail's versions come from a run "
                           "(log the model inside mlflow.start_run())")
        if not record.files:
            raise MlflowException(f"logged model {model_id} has no files yet: register it once it is saved",
                                  databricks_pb2.INVALID_STATE)
        return Source(run, list(record.files.values()), model_id=model_id)

    def _copied(self, name: str | None, version: str | None, alias: str | None, run_id: str | None) -> Source:
        """The files of a registered version (MLflow's ``copy_model_version``)."""
        if name is None:
            raise _invalid("a models:/ source names a model")
        if alias is not None:
            copied = self.get_model_version_by_alias(name, alias)
        elif version is not None:
            copied = self.get_model_version(name, version)
        else:
            raise _invalid("a models:/ source names a version: models:/<name>/<version> or models:/<name>@<alias>")
        found = self._version(name, copied.version)
        if found.missing is not None:
            raise _without_files(found)
        if found.model_id is not None:
            source = self._logged_model(found.model_id, run_id or found.run)
        elif found.run is None or found.artifact is None:  # (only a version without files has neither)
            raise _invalid(f"version {found.number} of {name!r} has no run to copy its files from")
        elif found.files:
            source = Source(found.run, list(found.files), folder=_run_folder_of(found))
        else:
            source = self._run_folder(found.run, found.artifact)
        return replace(source, copied_from=name)

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: Sequence[ModelVersionTag] | None = None, run_link: str | None = None,
                             description: str | None = None, local_model_path: str | None = None,
                             model_id: str | None = None, *, by: str | None = None,
                             files: Source | None = None) -> ModelVersion:
        """A new version of ``name`` from ``source`` (``files``: what it names, when the
        caller has resolved it already to check who may read it)."""
        _validate_model_name(name)
        for tag in tags or []:
            _validate_model_version_tag(tag.key, tag.value)
        self._model(name)
        found = files or self.source_files(source, run_id, model_id)
        with mlflow_errors():
            version = self.registry.register_files(
                name, found.run_id, found.files, source=source, folder=found.folder, model_id=found.model_id,
                description=description or None, tags={t.key: str(t.value) for t in tags or []}, by=by)
        return self.version_entity(version)

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        return self.version_entity(self._version(name, version))

    def update_model_version(self, name: str, version: Any, description: str | None, *,
                             by: str | None = None) -> ModelVersion:
        found = self._version(name, version)
        with mlflow_errors():
            self.registry.describe(name, description, found.number, by=by)
        return self.get_model_version(name, found.number)

    def transition_model_version_stage(self, name: str, version: Any, stage: str, archive_existing_versions: bool,
                                       *, by: str | None = None) -> ModelVersion:
        """MLflow 2's stages, as the version tag ``mlflow.current_stage``."""
        canonical = get_canonical_stage(stage)
        if archive_existing_versions and canonical not in DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS:
            raise _invalid("Model version transition cannot archive existing model versions because "
                           f"'{stage}' is not an Active stage. Valid stages are {DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS}")
        found = self._version(name, version)
        with mlflow_errors():
            if archive_existing_versions:
                for other in self._model(name).versions:
                    if other.number != found.number and not other.deleted and other.tags.get(STAGE_TAG) == canonical:
                        self.registry.set_tag(name, STAGE_TAG, STAGE_ARCHIVED, other.number, by=by)
            self.registry.set_tag(name, STAGE_TAG, canonical, found.number, by=by)
        return self.get_model_version(name, found.number)

    def delete_model_version(self, name: str, version: Any, *, by: str | None = None) -> None:
        found = self._version(name, version)
        with mlflow_errors():
            self.registry.delete_version(name, found.number, _DELETED, by=by)

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        """Where MLflow's client reads the version's files: its logged model's location, else
        its source (``runs:/`` for a version mltrail registered)."""
        found = self._version(name, version)
        if found.missing is not None:
            raise _without_files(found)
        if found.model_id is not None:
            return self.translation.logged_models.get(found.model_id, allow_deleted=True).artifact_location
        if found.files and (found.source or "").startswith("models:/"):  # a copy: where its files are, which
            return f"runs:/{found.run}/{_run_folder_of(found)}"  # the version it copied may not be for ever
        return found.source or f"runs:/{found.run}/{found.artifact}"

    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
                              order_by: Sequence[str] | None = None, page_token: str | None = None, *,
                              visible: Callable[[str], bool] | None = None) -> PagedList[ModelVersion]:
        _page_bounds(max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD)
        found = [self.version_entity(v) for m in self._models(visible) for v in m.versions if not v.deleted]
        found = SearchModelVersionUtils.filter(found, add_prompt_filter_string(filter_string, is_prompt=False))
        found = SearchModelVersionUtils.sort(
            found, order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"])
        return _page(found, page_token, max_results)

    def set_model_version_tag(self, name: str, version: Any, tag: ModelVersionTag, *, by: str | None = None) -> None:
        _validate_model_version_tag(tag.key, tag.value)
        found = self._version(name, version)
        with mlflow_errors():
            self.registry.set_tag(name, tag.key, "" if tag.value is None else str(tag.value), found.number, by=by)

    def delete_model_version_tag(self, name: str, version: Any, key: str, *, by: str | None = None) -> None:
        _validate_tag_name(key)
        found = self._version(name, version)
        if key in found.tags:
            with mlflow_errors():
                self.registry.delete_tag(name, key, found.number, by=by)

    # -- aliases -------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: Any, *, by: str | None = None) -> None:
        _validate_alias_name(alias)
        _validate_alias_name_reserved(alias)
        found = self._version(name, version)
        with mlflow_errors():
            self.registry.set_alias(name, alias, found.number, by=by)

    def delete_registered_model_alias(self, name: str, alias: str, *, by: str | None = None) -> None:
        _validate_alias_name(alias)
        if alias in self._model(name).aliases:  # as MLflow's stores: an alias not there is no error
            with mlflow_errors():
                self.registry.delete_alias(name, alias, by=by)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        model = self._model(name)
        if alias.lower() == _REGISTERED_MODEL_ALIAS_LATEST:
            live = [v for v in model.versions if not v.deleted]
            if not live:
                raise MlflowException(f"Latest version not found for model {name}.",
                                      databricks_pb2.RESOURCE_DOES_NOT_EXIST)
            return self.version_entity(live[-1])
        if alias not in model.aliases:
            raise _invalid(f"Registered model alias {alias} not found.")
        return self.get_model_version(name, model.aliases[alias])

    def _await_model_version_creation(self, mv: ModelVersion, await_creation_for: int) -> None:
        """A version is READY once created: nothing to wait for (as MLflow's file store)."""

    # -- what mltrail does not keep --------------------------------------------------------

    def create_prompt(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_NOT_KEPT)

    def create_prompt_version(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_NOT_KEPT)

    def search_prompts(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_NOT_KEPT)

    def get_prompt(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_NOT_KEPT)

    def get_prompt_version(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_NOT_KEPT)


class MltrailRegistryStore(RegistryTranslation):
    """MLflow's registry store on an mltrail folder: ``MLFLOW_REGISTRY_URI`` (by default the
    tracking URI) ``mltrail:./runs``. It shares the folder's translation with the tracking
    store of the same URI, so a version registered from a run this process logs sees it."""

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None) -> None:
        super().__init__(translation_for(store_root(store_uri or tracking_uri or "")))


_by_translation: weakref.WeakKeyDictionary[Translation, RegistryTranslation] = weakref.WeakKeyDictionary()


def registry_translation(translation: Translation) -> RegistryTranslation:
    """The registry calls of one translation (the server's), made once."""
    found = _by_translation.get(translation)
    if found is None:
        found = _by_translation[translation] = RegistryTranslation(translation)
    return found

