"""README's first command, end to end: demo data, the demo training recipe, scores, a real song separated."""
import pytest
import soundfile as sf

import quickstart


@pytest.mark.slow
def test_quickstart_trains_a_demo_model_that_separates(tmp_path, capsys):
    result = quickstart.main(["--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    sdr = result["scores"]["vocals_SDR_median"]
    assert sdr >= 3.0, f"the demo model scores {sdr:.2f} dB vocals SDR on the demo test songs (target >= 3)"
    assert result["scores"]["songs"] == 7
    for stem, path in result["stems"].items():
        info = sf.info(str(path))
        assert info.duration > 5 and info.channels == 2, (stem, info)
        assert str(path) in out                                  # the written paths are printed
    assert (tmp_path / "results" / "results_table.md").exists()
    assert "quickstart: done in" in out
