"""The simulated mesh: a fake Kubernetes-with-Istio API and a traffic generator."""
