"""MLflow's model folders in a store: an ``MLmodel`` file and the files it names, as
``mlflow.<flavor>.save_model`` and ``log_model`` write them. In a store they are blobs like
any artifact (a run's artifacts under one folder, or a registered version's files);
:meth:`~mltrail.registry.ModelRegistry.resolve` verifies each and :func:`load_resolved`
loads them.

What ``store.load_model`` returns for an MLflow model, and why:

- a scikit-learn, XGBoost or LightGBM model: the library's own model, as
  ``mlflow.<flavor>.load_model`` returns it (the estimator; the ``XGBClassifier`` or
  ``Booster`` that ``model_class`` in ``MLmodel`` names; the ``lightgbm.Booster`` or
  ``LGBMClassifier``). mltrail reads these formats itself (pickle, cloudpickle and skops;
  XGBoost's JSON and UBJSON; LightGBM's text), so the same object comes back through the
  same checks whether MLflow is installed or not, and it is what a pickled model has always
  loaded as: code written for one takes the other, and so does the model service.
- any other MLflow model (a ``PythonModel``, a flavor mltrail does not read) and a native
  one with a ``code`` folder (its pickle imports modules from there): what MLflow's own
  loader makes of a copy of the folder (``mlflow.pyfunc.load_model``: a ``PyFuncModel``).
  That needs MLflow; without it the error says so.

skops: a file saved with skops names the types it is made of. skops trusts its own list
(scikit-learn's, NumPy's...); the ``MLmodel``'s ``skops_trusted_types`` adds what the
model's author trusted when saving it (as MLflow's loader reads it), and
``MLTRAIL_SKOPS_TRUSTED_TYPES`` what the user trusts. A type outside all three is never
loaded: :class:`~mltrail.errors.UntrustedTypesError` names each, and how to trust it.
"""

from __future__ import annotations

import importlib
import json
import posixpath
import shutil
import tempfile
import weakref
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..config import SKOPS_TRUSTED_TYPES
from ..errors import InvalidInputError, MltrailError, UntrustedTypesError
from ..storage.logged_model_events import ModelFile
from .uris import ResolvedModel, needs_module, unpickle, unpickled

MLMODEL = "MLmodel"


def _inside(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def mlflow_folder(named: str, paths: Collection[str]) -> str | None:
    """The folder of the MLflow model that ``named`` designates among a run's artifact
    ``paths``: ``named`` itself when it is a folder holding an ``MLmodel``, the folder of a
    file beside its ``MLmodel`` (or of the ``MLmodel`` itself); None when it is no part of one."""
    named = named.strip("/")
    folder = posixpath.dirname(named) if named in paths else named
    return folder if _inside(folder, MLMODEL) in paths else None


def folder_files(folder: str, files: Iterable[ModelFile]) -> list[ModelFile]:
    """The files under ``folder`` (a run's artifacts), by their path inside it."""
    if not folder:
        return list(files)
    prefix = folder + "/"
    return [f.model_copy(update={"path": f.path[len(prefix):]}) for f in files if f.path.startswith(prefix)]


PICKLES = ("model.pkl", "model.joblib", "model.pickle")  # what a folder without flavors is loaded from


def is_mlflow_model(resolved: ResolvedModel) -> bool:
    """Whether the URI names a folder whose ``MLmodel`` names flavors (what MLflow saves)."""
    return MLMODEL in resolved.files and _has_flavors(resolved)


def load_resolved(resolved: ResolvedModel) -> Any:
    """The model a resolved URI names: an MLflow model's (see the module's docstring), else
    the object pickled in its file. A folder whose ``MLmodel`` names no flavors (written by
    hand, or by a tool that copies MLflow's layout) is loaded from its pickle, as mltrail
    loaded such folders before it read MLflow's flavors; without one it says what is wrong."""
    if is_mlflow_model(resolved):
        return load_mlflow_model(resolved)
    if MLMODEL in resolved.files:
        pickle_file = next((name for name in PICKLES if name in resolved.files), None)
        if pickle_file is None:
            read_mlmodel(resolved)  # raises, naming what the MLmodel lacks
        else:
            # the URI named the folder, or one of its files
            folder = posixpath.dirname(resolved.artifact) if posixpath.basename(resolved.artifact) in resolved.files \
                else resolved.artifact
            return unpickled(replace(resolved, path=resolved.files[pickle_file],
                                     artifact=posixpath.join(folder, pickle_file)))
    return unpickled(resolved)


def _has_flavors(resolved: ResolvedModel) -> bool:
    try:
        read_mlmodel(resolved)
    except InvalidInputError as exc:
        if "names no flavors" in str(exc):
            return False
        raise
    return True


def read_mlmodel(resolved: ResolvedModel) -> dict[str, Any]:
    """The ``MLmodel`` of a resolved MLflow model, parsed (YAML)."""
    try:
        spec = yaml.safe_load(resolved.files[MLMODEL].read_bytes())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{resolved.uri}: its MLmodel file is not YAML ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("flavors"), dict) or not spec["flavors"]:
        raise InvalidInputError(f"{resolved.uri}: its MLmodel file names no flavors: it is not a model "
                                "MLflow saved")
    return spec


def signature_inputs(resolved: ResolvedModel) -> list[str] | None:
    """The input columns an MLflow model's signature names, in order (None: no signature,
    or inputs without names, such as a tensor's)."""
    signature = read_mlmodel(resolved).get("signature")
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    try:
        columns = json.loads(inputs) if isinstance(inputs, str) else None
    except ValueError:
        return None
    if not isinstance(columns, list) or not columns:
        return None
    names = [c.get("name") if isinstance(c, dict) else None for c in columns]
    return [str(n) for n in names] if all(isinstance(n, str) for n in names) else None


def load_mlflow_model(resolved: ResolvedModel) -> Any:
    """The model of a resolved MLflow model folder: its native flavor's model when mltrail
    reads that flavor, else what ``mlflow.pyfunc.load_model`` makes of it."""
    flavors = read_mlmodel(resolved)["flavors"]
    for name, load in _NATIVE.items():
        conf = flavors.get(name)
        if isinstance(conf, dict):
            if conf.get("code"):
                return _through_mlflow(resolved, name, f"imports code from its folder {conf['code']!r}")
            return load(resolved, conf)
    if "python_function" in flavors:
        return _through_mlflow(resolved, "pyfunc", f"has the flavors {', '.join(map(str, flavors))}, which "
                               "mltrail does not read itself")
    raise InvalidInputError(f"{resolved.uri} is an MLflow model of flavors {', '.join(map(str, flavors))}, "
                            "none of which loads here: mltrail reads sklearn, xgboost and lightgbm, and with "
                            "MLflow installed any model with a python_function flavor")


def _data(resolved: ResolvedModel, conf: dict[str, Any], key: str) -> Path:
    """The file of the folder a flavor's ``key`` names."""
    name = conf.get(key)
    path = posixpath.normpath(name) if isinstance(name, str) and name else None
    if path is None or path not in resolved.files:
        raise InvalidInputError(f"{resolved.uri}: its MLmodel names {key}={name!r}, which is not among its "
                                f"files ({', '.join(sorted(resolved.files))})")
    return resolved.files[path]


def _sklearn(resolved: ResolvedModel, conf: dict[str, Any]) -> Any:
    # MLflow before skops wrote no serialization_format for a pickle: its loader reads one then
    return _serialized(resolved, _data(resolved, conf, "pickled_model"), conf.get("serialization_format", "pickle"),
                       conf.get("skops_trusted_types"))


def _serialized(resolved: ResolvedModel, path: Path, form: Any, listed: Any) -> Any:
    """A scikit-learn (or scikit-learn API) model in MLflow's ``serialization_format``."""
    if form == "skops":
        return _skops(resolved.uri, path, listed)
    if form in ("pickle", "cloudpickle"):  # (cloudpickle writes pickles: pickle reads them)
        return unpickle(path.read_bytes(), resolved.uri)
    raise InvalidInputError(f"{resolved.uri}: its MLmodel names the serialization_format {form!r}, which is "
                            "none of MLflow's (skops, pickle, cloudpickle)")


def trusted_types(listed: Any) -> list[str]:
    """The types a skops file may load besides skops' own: the model's list and the user's."""
    own = [str(t) for t in listed] if isinstance(listed, list) else []
    users = [t.strip() for t in SKOPS_TRUSTED_TYPES.get().split(",") if t.strip()]
    return sorted({*own, *users})


def _skops(uri: str, path: Path, listed: Any) -> Any:
    try:
        from skops import io as skops_io
    except ModuleNotFoundError as exc:
        raise needs_module(uri, exc) from None
    trusted = trusted_types(listed)
    untrusted = [t for t in skops_io.get_untrusted_types(file=path) if t not in trusted]
    if untrusted:
        raise UntrustedTypesError(uri, untrusted)
    return skops_io.load(path, trusted=trusted or None)


def _library_class(uri: str, name: Any, library: str) -> Any:
    """The class ``model_class`` names, which must be the library's own (an MLmodel does not
    get to make this process import and call anything else)."""
    module, _, attribute = str(name).rpartition(".")
    if module.partition(".")[0] != library:
        raise InvalidInputError(f"{uri}: its MLmodel names the model_class {name!r}, which is no class of "
                                f"{library}")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError as exc:
        raise needs_module(uri, exc) from None
    except AttributeError:
        raise MltrailError(f"{uri}: the {library} installed here has no {name} (the model was saved with "
                           "another version of it)") from None


def _xgboost(resolved: ResolvedModel, conf: dict[str, Any]) -> Any:
    data = _data(resolved, conf, "data").read_bytes()
    model = _library_class(resolved.uri, conf.get("model_class", "xgboost.core.Booster"), "xgboost")()
    # from its bytes, which tell XGBoost their format (JSON or UBJSON): a blob's name has no
    # extension to tell it
    model.load_model(bytearray(data))
    return model


def _lightgbm(resolved: ResolvedModel, conf: dict[str, Any]) -> Any:
    path = _data(resolved, conf, "data")
    name = conf.get("model_class", "lightgbm.basic.Booster")
    if name != "lightgbm.basic.Booster":  # LightGBM's scikit-learn API: serialized as scikit-learn models are
        # (MLflow before skops wrote no serialization_format: cloudpickle then)
        return _serialized(resolved, path, conf.get("serialization_format", "cloudpickle"),
                           conf.get("skops_trusted_types"))
    booster = _library_class(resolved.uri, name, "lightgbm")
    return booster(model_str=path.read_text(encoding="utf-8"))


_NATIVE: dict[str, Callable[[ResolvedModel, dict[str, Any]], Any]] = {
    "sklearn": _sklearn, "xgboost": _xgboost, "lightgbm": _lightgbm}


def _through_mlflow(resolved: ResolvedModel, flavor: str, why: str) -> Any:
    """``mlflow.<flavor>.load_model`` on a copy of the folder. The copy lives as long as
    the model: a ``PythonModel`` may read its artifacts there when it predicts."""
    try:
        loader = importlib.import_module(f"mlflow.{flavor}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "mlflow":
            raise needs_module(resolved.uri, exc) from None
        raise MltrailError(f"{resolved.uri} is an MLflow model that {why}: loading it needs MLflow here "
                           "(pip install mlflow-skinny, or mltrail[mlflow])") from None
    folder = materialize(resolved)
    try:
        model = loader.load_model(str(folder))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        weakref.finalize(model, shutil.rmtree, folder, True)
    except TypeError:  # an object without weak references: it keeps no file open, or the copy goes at exit
        weakref.finalize(loader, shutil.rmtree, folder, True)
    return model


def materialize(resolved: ResolvedModel, into: Path | None = None) -> Path:
    """The MLflow model's folder as files: each verified blob copied to its path inside a
    new temporary folder (or ``into``), which is returned."""
    folder = Path(tempfile.mkdtemp(prefix="mltrail-model-")) if into is None else into
    try:
        for name, blob in sorted(resolved.files.items()):
            target = (folder / name).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise InvalidInputError(f"{resolved.uri}: its file {name!r} would leave its folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blob, target)
    except BaseException:
        if into is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
