"""workbench.data: the data set registry, image sources and device-side batch loaders."""

from workbench.data.loader import BatchLoader, DeviceAugment, make_loader
from workbench.data.registry import (
    AVAILABILITY,
    DatasetSpec,
    availability,
    download,
    get_dataset,
    list_datasets,
    load_splits,
    register_dataset,
)
from workbench.data.sources import DataSplits, ImageSource, InMemoryImages, StreamingImages, stratified_split

__all__ = [
    "AVAILABILITY", "BatchLoader", "DataSplits", "DatasetSpec", "DeviceAugment", "ImageSource", "InMemoryImages",
    "StreamingImages", "availability", "download", "get_dataset", "list_datasets", "load_splits", "make_loader",
    "register_dataset", "stratified_split",
]
