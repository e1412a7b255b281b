"""The polling agent: pollsters, discoverers and the ``AgentManager``.

See :mod:`telemeter.polling.manager` for the agent itself,
:mod:`telemeter.polling.plugin_base` for the plugin contracts and
:mod:`telemeter.polling.host.pollsters` for the meters of the local node.
"""
