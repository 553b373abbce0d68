"""An example aebench plugin: the ``copycat`` method and the ``brightness`` metric."""
