"""Object proposals: edge maps, EdgeBoxes, the proposal shard store and recall QC.

Public API:

* :func:`edge_boxes` — EdgeBoxes proposals for one uint8 RGB image.
* :func:`compute_proposals` — proposals for a list of image files with a worker pool.
* :func:`propose` — the proposals stage's dispatch over ``proposals.method`` (:data:`PROPOSAL_METHODS`:
  EdgeBoxes, :func:`selective_search`, :func:`random_boxes`, :func:`ground_truth_boxes`; paper Table 5).
* :func:`write_shard`, :class:`ProposalStore`, :func:`shard_indices`, :func:`shard_filename` — the
  on-disk format of ``docs/formats.md`` section 2.
* :func:`box_iou`, :func:`recall_at_iou`, :func:`qc_row` — quality control (``qc.csv``).

Method, parameters and measured numbers: ``docs/proposals.md``.
"""

from kdwsd.proposals.edgeboxes import (
    EdgeBoxesParams,
    ProposalRun,
    compute_proposals,
    edge_boxes,
    map_images,
    read_rgb,
    split_params,
)
from kdwsd.proposals.edges import (
    STRUCTURED_MODEL_SHA256,
    STRUCTURED_MODEL_URL,
    EdgeMapParams,
    compute_edge_maps,
)
from kdwsd.proposals.qc import box_iou, qc_row, recall_at_iou
from kdwsd.proposals.sources import (
    METHOD_SECTIONS,
    PROPOSAL_METHODS,
    RandomBoxesParams,
    SelectiveSearchParams,
    ground_truth_boxes,
    propose,
    propose_image,
    random_boxes,
    selective_search,
)
from kdwsd.proposals.store import ProposalStore, shard_filename, shard_indices, write_shard

__all__ = [
    "METHOD_SECTIONS",
    "PROPOSAL_METHODS",
    "STRUCTURED_MODEL_SHA256",
    "STRUCTURED_MODEL_URL",
    "EdgeBoxesParams",
    "EdgeMapParams",
    "ProposalRun",
    "ProposalStore",
    "RandomBoxesParams",
    "SelectiveSearchParams",
    "box_iou",
    "compute_edge_maps",
    "compute_proposals",
    "edge_boxes",
    "ground_truth_boxes",
    "map_images",
    "propose",
    "propose_image",
    "qc_row",
    "random_boxes",
    "read_rgb",
    "recall_at_iou",
    "selective_search",
    "shard_filename",
    "shard_indices",
    "split_params",
    "write_shard",
]
