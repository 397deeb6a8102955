"""Opens a sandbox phone page in headless Chromium (selenium + chromedriver), checks that
the expected texts are shown, clicks a button and waits for the outcome page.

Usage: browser_click.py URL BUTTON_ID OUTCOME_TEXT [EXPECTED_TEXT ...]
Environment: CHROMIUM, CHROMEDRIVER (default: found on PATH).
"""

import os
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


def main():
    url, button, outcome = sys.argv[1], sys.argv[2], sys.argv[3]
    expected = sys.argv[4:]
    profile = tempfile.mkdtemp(prefix="scanbind-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=412,915", "--user-data-dir=" + profile):
        options.add_argument(flag)
    driver_path = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(url)
        page = driver.find_element(By.TAG_NAME, "body").text
        for text in expected:
            if text not in page:
                print("FAIL: %r not on the page:\n%s" % (text, page), file=sys.stderr)
                sys.exit(1)
        driver.find_element(By.ID, button).click()
        WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "outcome")))
        result = driver.find_element(By.ID, "outcome").text
        if outcome not in result:
            print("FAIL: outcome %r does not contain %r" % (result, outcome), file=sys.stderr)
            sys.exit(1)
        print("OK " + result)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
