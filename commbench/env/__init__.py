"""The machine a run happens on: versions, devices, hosts, and which NCCL library actually runs."""
