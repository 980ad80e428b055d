# Ultimate Rotoscopy: Nuke menus (GUI sessions only). Never breaks Nuke.
try:
    import roto_nuke

    roto_nuke.install_menu()
except Exception as _exc:
    print("Ultimate Rotoscopy: menu not installed: %s" % _exc)
