"""Checks on what ships to Kubernetes: the kustomize overlays and the Dockerfile."""
