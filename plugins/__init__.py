"""The built-in service-class plugins of dicomnet (PS3.4).

Each module here is an ordinary plugin, declared in the ``dicomnet.plugins``
entry-point group of dicomnet's own ``pyproject.toml`` and listed in
:data:`dicomnet.plugin_manager.BUILTIN_PLUGINS`; it is loaded exactly like a
third-party plugin and can be blocked like one
(``AE(plugins=...)``, ``make_plugin_manager(block=[...])``). Nothing in this
package is imported until a plugin manager asks for it.

=============  ===========================================  ==========
plugin         service class                                PS3.4
=============  ===========================================  ==========
verification   Verification (C-ECHO)                        Annex A
=============  ===========================================  ==========

The guide to writing plugins is ``docs/plugins.md``.
"""
