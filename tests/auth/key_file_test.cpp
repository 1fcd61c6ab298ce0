#include <fstream>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <parley/auth/encoding.hpp>
#include <parley/auth/key_file.hpp>
#include <parley/auth/token.hpp>

namespace parley::auth {
namespace {

namespace fs = std::filesystem;

class KeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() / ("parley-auth-test-" + randomToken(9));
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  void write(const fs::path& file, std::size_t bytes) {
    std::ofstream(file, std::ios::binary) << std::string(bytes, 'k');
  }

  fs::path directory_;
};

TEST_F(KeyFile, CreatesAPrivate32ByteKeyAndLoadsItAgain) {
  const fs::path file = directory_ / "token-key";
  const auto created = loadOrCreateKey(file);
  EXPECT_EQ(created.size(), 32u);
  EXPECT_EQ(fs::file_size(file), 32u);
  struct stat status {};
  ASSERT_EQ(::stat(file.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);

  EXPECT_EQ(loadOrCreateKey(file), created);
  EXPECT_NO_THROW(TokenSigner({created}));
  // Only the key is left: the temporary file was renamed, not copied.
  EXPECT_EQ(std::distance(fs::directory_iterator(directory_), fs::directory_iterator()), 1);
}

TEST_F(KeyFile, EveryNewKeyIsDifferent) {
  EXPECT_NE(loadOrCreateKey(directory_ / "a"), loadOrCreateKey(directory_ / "b"));
}

TEST_F(KeyFile, LoadsLongerKeysAsTheyAre) {
  const fs::path file = directory_ / "token-key";
  write(file, 64);
  EXPECT_EQ(loadOrCreateKey(file), std::vector<std::uint8_t>(64, 'k'));
}

TEST_F(KeyFile, RefusesKeysOfTheWrongSizeNamingThePath) {
  for (const std::size_t size : {std::size_t{0}, std::size_t{31}, std::size_t{4097}}) {
    const fs::path file = directory_ / ("key-" + std::to_string(size));
    write(file, size);
    try {
      loadOrCreateKey(file);
      ADD_FAILURE() << size << " bytes were accepted";
    } catch (const std::runtime_error& error) {
      EXPECT_NE(std::string(error.what()).find(file.string()), std::string::npos) << error.what();
    }
    EXPECT_EQ(fs::file_size(file), size);  // never overwritten
  }
}

TEST_F(KeyFile, FailsNamingThePathWhenItCannotBeCreated) {
  const fs::path file = directory_ / "missing-directory" / "token-key";
  try {
    loadOrCreateKey(file);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(file.string()), std::string::npos) << error.what();
  }
}

TEST_F(KeyFile, RefusesADirectory) {
  const fs::path file = directory_ / "token-key";
  fs::create_directories(file);
  EXPECT_THROW(loadOrCreateKey(file), std::runtime_error);
}

}  // namespace
}  // namespace parley::auth
