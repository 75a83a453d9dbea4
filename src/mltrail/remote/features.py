"""``store.features`` against a server, for reading: definitions are the server's
events replayed here as a local store replays its files; training sets and online
values are computed by the server, where the views' source files and the online store
are. Applying definitions and materializing happen on the server's machine."""

from __future__ import annotations

import builtins
import os
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow.parquet as pq

from ..errors import InvalidInputError, NotFoundError, NotOnServerError
from ..features.store import FeatureStore, SavedDataset
from ..storage import feature_events as ev
from ..storage.blobs import BlobStore
from ..storage.layout import Layout
from .http import Server
from .wire import frame_bytes, read_frame

_ON_THE_SERVER = ("{} changes the feature definitions or the online store, which are files on the server's "
                  "machine: run it there (mltrail.Store(PATH), or the mltrail CLI with --store PATH)")


class RemoteFeatureStore(FeatureStore):
    """The server's feature store, read through its API."""

    def __init__(self, server: Server, spool: Layout, blobs: BlobStore, fetch: Callable[[str], Path]) -> None:
        super().__init__(spool, blobs)
        self.server = server
        self._fetch = fetch

    def _events(self) -> list[ev.FeatureEvent]:
        return [ev.FEATURE_EVENT_ADAPTER.validate_python(e) for e in self.server.call("GET", "/api/v1/features/events")]

    def list(self) -> pd.DataFrame:
        return read_frame(self.server.call("GET", "/api/v1/features/views", raw=True))

    def get_historical_features(self, entity_df: pd.DataFrame, features: Sequence[str],
                                full_feature_names: bool = False, as_known_then: bool = False) -> pd.DataFrame:
        if not isinstance(entity_df, pd.DataFrame):
            raise InvalidInputError("entity_df must be a pandas DataFrame")
        query = urllib.parse.urlencode({"features": [features] if isinstance(features, str) else list(features),
                                        "full_feature_names": full_feature_names, "as_known_then": as_known_then},
                                       doseq=True)
        return read_frame(self.server.call("POST", f"/api/v1/features/historical?{query}",
                                           frame_bytes(entity_df), raw=True))

    def get_online_features(self, features: Sequence[str], entity_rows: Sequence[Mapping[str, Any]],
                            full_feature_names: bool = False) -> dict[str, builtins.list[Any]]:
        body = orjson.dumps({"features": [features] if isinstance(features, str) else list(features),
                             "entity_rows": [dict(r) for r in entity_rows], "full_feature_names": full_feature_names},
                            option=orjson.OPT_SERIALIZE_NUMPY)
        return dict(self.server.call("POST", "/api/v1/features/online", body))

    def load_dataset(self, name: str) -> pd.DataFrame:
        saved = [e for e in self._events() if isinstance(e, ev.DatasetSaved) and e.name == name]
        if not saved:
            raise NotFoundError(f"no saved dataset {name!r}")
        self._fetch(saved[-1].sha256)
        return pq.read_table(self.blobs.verified(saved[-1].sha256, f"saved dataset {name!r}")).to_pandas()

    # -- what changes the definitions or the online store: on the server's machine ----

    def apply_entity(self, name: str, join_keys: Sequence[str], description: str | None = None, *,
                     by: str | None = None) -> ev.EntityApplied:
        raise NotOnServerError(_ON_THE_SERVER.format("apply_entity"))

    def apply_view(self, name: str, entity: str, source: str | os.PathLike[str], timestamp_field: str,
                   features: Mapping[str, str], created_timestamp_field: str | None = None,
                   ttl: str | None = None, description: str | None = None, *,
                   by: str | None = None) -> ev.ViewApplied:
        raise NotOnServerError(_ON_THE_SERVER.format("apply_view"))

    def materialize(self, start: Any = None, end: Any = None, views: Sequence[str] | None = None, *,
                    by: str | None = None) -> pd.DataFrame:
        raise NotOnServerError(_ON_THE_SERVER.format("materialize"))

    def save_dataset(self, name: str, df: pd.DataFrame, features: Sequence[str] = (), *,
                     by: str | None = None) -> SavedDataset:
        raise NotOnServerError(_ON_THE_SERVER.format("save_dataset"))

    @property
    def online(self) -> Any:
        """Not against a server (the online store is its file): ask ``get_online_features``."""
        raise NotOnServerError("store.features.online is the server's own online store (a file on its machine): "
                               "read its values with store.features.get_online_features(features, entity_rows)")
