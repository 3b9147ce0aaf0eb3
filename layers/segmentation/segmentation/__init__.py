"""The segmentation service's domain package, shipped to Lambda as a layer."""
