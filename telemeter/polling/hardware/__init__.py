"""Hardware meters read over the network (SNMP) from other machines.

:mod:`.pollsters` builds one pollster per meter of ``snmp.yaml``;
:mod:`.inspector` parses resource URLs and loads the inspector of their
scheme (``telemeter.hardware.inspectors``); :mod:`.snmp` is the SNMP
inspector (pysnmp).
"""
