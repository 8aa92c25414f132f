# Installation (`cmake --install`) and the Debian package (`make deb`, which
# runs CPack's DEB generator on a build configured by scripts/build-deb).
#
# The layout is Debian's whatever CMAKE_INSTALL_PREFIX says, because the
# relay and its unit name these paths: the configuration in /etc/subrelay
# (the relay's default --config), the spool in /var/spool/subrelay (made by
# the package's postinst, as the subrelay user's), the unit in systemd's
# system unit directory. The binary, the manual pages and the documentation
# go under the prefix (/usr for the package: the unit runs /usr/sbin/subrelay).
include(GNUInstallDirs)

install(TARGETS subrelay RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})

# Conffiles. The package gives them group subrelay and mode 0640 in its
# postinst (dpkg-statoverride): the policy holds password hashes.
install(FILES conf/example/subrelay.toml conf/example/policy.toml
        DESTINATION /etc/subrelay
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)

pkg_get_variable(SUBRELAY_SYSTEMD_UNIT_DIR systemd systemdsystemunitdir)
if(NOT SUBRELAY_SYSTEMD_UNIT_DIR)
  set(SUBRELAY_SYSTEMD_UNIT_DIR /lib/systemd/system)
endif()
install(FILES conf/systemd/subrelay.service DESTINATION ${SUBRELAY_SYSTEMD_UNIT_DIR})

# Manual pages, written in scdoc (conf/man/*.scd) and generated here.
find_program(SCDOC scdoc)
find_program(GZIP gzip REQUIRED)
option(SUBRELAY_MANPAGES "Generate the manual pages (needs scdoc)" ${SCDOC})
if(SUBRELAY_MANPAGES)
  if(NOT SCDOC)
    message(FATAL_ERROR "SUBRELAY_MANPAGES needs scdoc (Debian package scdoc)")
  endif()
  set(pages)
  foreach(page subrelay.8 subrelay.toml.5)
    set(src ${PROJECT_SOURCE_DIR}/conf/man/${page}.scd)
    set(out ${PROJECT_BINARY_DIR}/man/${page}.gz)
    # gzip -n: no name or time stamp in the archive, so a rebuild is identical.
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND ${SCDOC} < ${src} > ${PROJECT_BINARY_DIR}/man/${page}
      COMMAND ${GZIP} -9nf ${PROJECT_BINARY_DIR}/man/${page}
      DEPENDS ${src}
      COMMENT "Generating the manual page ${page}"
      VERBATIM)
    string(REGEX MATCH "[0-9]$" section ${page})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
    list(APPEND pages ${out})
  endforeach()
  add_custom_target(manpages ALL DEPENDS ${pages})
endif()

# Documentation: Debian's copyright and changelog, the README, and the
# examples (fail2ban's filter and jail, the Grafana dashboard).
set(docdir ${CMAKE_INSTALL_DATADIR}/doc/subrelay)
set(changelog ${PROJECT_BINARY_DIR}/changelog.Debian.gz)
add_custom_command(OUTPUT ${changelog}
  COMMAND ${GZIP} -9nc ${PROJECT_SOURCE_DIR}/conf/debian/changelog > ${changelog}
  DEPENDS ${PROJECT_SOURCE_DIR}/conf/debian/changelog
  VERBATIM)
set(readme ${PROJECT_BINARY_DIR}/README.md.gz)
add_custom_command(OUTPUT ${readme}
  COMMAND ${GZIP} -9nc ${PROJECT_SOURCE_DIR}/README.md > ${readme}
  DEPENDS ${PROJECT_SOURCE_DIR}/README.md
  VERBATIM)
add_custom_target(docs ALL DEPENDS ${changelog} ${readme})
install(FILES conf/debian/copyright ${changelog} ${readme} DESTINATION ${docdir})
install(FILES conf/fail2ban/subrelay.conf conf/fail2ban/subrelay.jail.conf contrib/grafana/subrelay-dashboard.json
        DESTINATION ${docdir}/examples)

# The package. Its version is the project's, its Debian revision the one in
# conf/debian/changelog.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME subrelay)
set(CPACK_PACKAGE_VENDOR "the subrelay developers")
set(CPACK_PACKAGE_CONTACT "subrelay developers <subrelay-devel@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "SMTP submission relay for devices, with OAuth2 upstream")
# The extended description (the synopsis above is the first line).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "subrelay lets printers, scanners and applications that can only send mail
with a password keep working in a Microsoft 365 tenant that has SMTP AUTH
disabled. Devices submit on port 587 (STARTTLS) or 465 (implicit TLS) with
AUTH PLAIN or LOGIN against local accounts; a local policy decides, with
Exchange Online's own precedence and replies, who may submit and as which
senders; every accepted message is spooled durably and relayed to Exchange
Online (or Gmail) with SASL XOAUTH2, using OAuth2 tokens that subrelay
obtains and renews itself.")
file(STRINGS ${PROJECT_SOURCE_DIR}/conf/debian/changelog changelog_head LIMIT_COUNT 1)
string(REGEX MATCH "\\(([^)]+)-([^-)]+)\\)" _ "${changelog_head}")
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "conf/debian/changelog's version ${CMAKE_MATCH_1} is not the project's ${PROJECT_VERSION}")
endif()
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE ${CMAKE_MATCH_2})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Libraries come from dpkg-shlibdeps; libsasl2's PLAIN and LOGIN mechanisms
# are plugins (libsasl2-modules); ssl-cert has the shipped configuration's
# certificate; adduser is the postinst's (deb-systemd-helper, which the
# maintainer scripts use too, is in an essential package).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, libsasl2-modules, ssl-cert")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/conf/debian/conffiles
    ${PROJECT_SOURCE_DIR}/conf/debian/postinst
    ${PROJECT_SOURCE_DIR}/conf/debian/prerm
    ${PROJECT_SOURCE_DIR}/conf/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
