"""The built-in service-class plugins of dicomnet (PS3.4).

Each module here is an ordinary plugin, declared in the ``dicomnet.plugins``
entry-point group of dicomnet's own ``pyproject.toml`` and listed in
:data:`dicomnet.plugin_manager.BUILTIN_PLUGINS`; it is loaded exactly like a
third-party plugin and can be blocked like one
(``AE(plugins=...)``, ``make_plugin_manager(block=[...])``). Nothing in this
package is imported until a plugin manager asks for it.

=========================  ===========================================  =============
plugin                     service class                                PS3.4
=========================  ===========================================  =============
verification               Verification (C-ECHO)                        Annex A
storage                    Storage (C-STORE)                            Annex B
qr                         Query/Retrieve (C-FIND, C-GET, C-MOVE)       Annex C, Y, Z
worklist                   Basic Worklist Management (C-FIND)           Annex K
query_services             the other C-FIND/C-GET/C-MOVE services       Q, U, V, X...
procedure_step             Modality Performed Procedure Step (DIMSE-N)  Annex F
storage_commitment         Storage Commitment Push Model (DIMSE-N)      Annex J
instance_availability      Instance Availability Notification           Annex R
unified_procedure_step     Unified Procedure Step (DIMSE-N, C-FIND)     Annex CC
print_management           Print Management (DIMSE-N, meta classes)     Annex H
application_event_logging  Application Event Logging (N-ACTION)         Annex P
display_system             Display System Management (N-GET)            Annex EE
media_creation             Media Creation Management (DIMSE-N)          Annex S
rt_machine_verification    RT Machine Verification (DIMSE-N)            Annex DD
=========================  ===========================================  =============

``_qr_engine`` and ``_n_engine`` are not plugins: the engines serving the
DIMSE-C query/retrieve operations and the DIMSE-N operations.

The guide to writing plugins is ``docs/plugins.md``.
"""
