"""Planted wrong answers: each replaces answer cells of the solution and names the tests (and
points) it must lose. The nbgrader tests autograde every one of them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Planted:
    name: str
    answers: dict[str, str]  # grade_id of an answer cell -> the wrong code
    loses: dict[str, float] = field(default_factory=dict)  # grade_id of a test -> points lost


RUN_SHOP = """docker.run("course/web:v1", "shop", ports={ports}, env={env}, labels={labels})"""

PLANTED: dict[str, list[Planted]] = {
    "01-containers": [
        Planted(
            "port published on every interface",
            {
                "answer_run_shop": RUN_SHOP.format(
                    ports='{80: ("0.0.0.0", WEB_PORT)}',
                    env='{"MESSAGE": "Welcome to the shop"}',
                    labels='{"tier": "frontend"}',
                )
            },
            {"test_shop_port": 2},
        ),
        Planted(
            "right label, wrong message",
            {
                "answer_run_shop": RUN_SHOP.format(
                    ports="{80: WEB_PORT}",
                    env='{"MESSAGE": "Welcome"}',
                    labels='{"tier": "frontend"}',
                )
            },
            {"test_shop_config": 2, "test_shop_port": 2},
        ),
        Planted(
            "image without the ENV line",
            {
                "answer_build_greeter": 'DOCKERFILE = """\nFROM course/web:v1\n'
                'LABEL course.chapter="01-containers"\n"""\n'
                'greeter_tag = docker.build(".", "greeter:v1", dockerfile=DOCKERFILE)'
            },
            {"test_greeter_contents": 2},
        ),
        Planted(
            "pasted answers instead of observed ones",
            {
                "answer_hostname": 'shop_hostname = "localhost"',
                "answer_request_count": "request_count = 3",
            },
            {"test_hostname": 2, "test_request_count": 2},
        ),
        Planted(
            "wrong prediction",
            {"answer_stop": 'predicted_status = "stopped"\ndocker.stop("shop")'},
            {"test_prediction": 1},
        ),
    ],
}
