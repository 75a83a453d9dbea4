"""Reports drawn with live data: a report's Markdown cut into prose and blocks
(:mod:`.blocks`), each block read from a store, local or remote, as its reader may read it
(:mod:`.render`), and the whole written as one HTML file that opens offline (:mod:`.html`).
The files themselves are the store's (:mod:`mltrail.tracking.reports`)."""
