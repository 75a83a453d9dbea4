"""The model registry: versions with lineage to runs, aliases with full history."""

from .models import ModelRegistry, ModelVersion
from .uris import parse_model_uri

__all__ = ["ModelRegistry", "ModelVersion", "parse_model_uri"]
