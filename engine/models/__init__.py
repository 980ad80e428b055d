"""Model weights: the catalogue of known models, downloads, and the local store.

* :mod:`engine.models.catalogue` — official locations, sizes, licences (SAM 2.1, SAM 3,
  Depth Anything 3, MatAnyone);
* :mod:`engine.models.download` — resumable HTTP(S) download with checksum, atomic rename,
  lock and offline mode;
* :mod:`engine.models.manager` — ``<models dir>/<name>/<file>``, recorded checksums, verify,
  and :func:`~engine.models.manager.require` for backends (an error naming the fetch command).

Standard library only; nothing is imported until used.
"""

from __future__ import annotations

__all__ = ["catalogue", "download", "manager"]
