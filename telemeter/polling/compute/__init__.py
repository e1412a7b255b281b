"""Compute (hypervisor) meters of the instances running on this host.

:mod:`.inspector` is the hypervisor inspector contract and its stats
records, :mod:`.virt_libvirt` the libvirt inspector, :mod:`.discovery` the
``local_instances`` discoverer, :mod:`.instance` the instance metadata and
:mod:`.pollsters` / :mod:`.devices` the ``telemeter.poll.compute`` meters.
"""
