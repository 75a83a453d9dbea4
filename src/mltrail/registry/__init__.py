"""The model registry: versions with lineage to runs, aliases with full history."""

from .models import ModelRegistry, ModelVersion
from .uris import load_model, parse_model_uri, resolve

__all__ = ["ModelRegistry", "ModelVersion", "load_model", "parse_model_uri", "resolve"]
