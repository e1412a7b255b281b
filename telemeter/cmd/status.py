"""``telemeter-status upgrade check``."""

from __future__ import annotations

from oslo_config import cfg
from oslo_upgradecheck import upgradecheck


class Checks(upgradecheck.UpgradeCommands):
    """Checks run before an upgrade of telemeter."""

    def _sample_check(self) -> upgradecheck.Result:
        """A placeholder check that always succeeds."""
        return upgradecheck.Result(upgradecheck.Code.SUCCESS,
                                   'Sample detail')

    _upgrade_checks = (('Sample Check', _sample_check),)


def main() -> int:
    return upgradecheck.main(cfg.ConfigOpts(), project='telemeter',
                             upgrade_command=Checks())
